using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// The app as its own process, killed with SIGKILL in the middle of a burst of submits and decisions, then started
/// again: every call that was answered 2xx is in Redis once and in the audit history once, and the chain verifies.
/// </summary>
public sealed class KillNineTests
{
    [Fact]
    public async Task Every_answered_submit_and_decision_survives_a_kill_9_of_the_app_once_and_audited()
    {
        var redis = await TestServers.GarnetAsync();
        var prefix = $"k9{Guid.NewGuid():N}:";
        var data = TestServers.NewTempDirectory("kill9");
        var port = FreePort.Pick();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(10) };
        var app = await StartAsync(redis, prefix, data, port, http);
        var acknowledged = new ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        try
        {
            var workers = Enumerable.Range(0, 6).Select(w => Task.Run(() => WorkAsync(http, w, acknowledged, stop.Token))).ToList();
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            Assert.NotEmpty(acknowledged);
            app.Kill(); // SIGKILL: no shutdown, no flush, commits in flight die with it
            await app.WaitForExitAsync();
            app.Dispose();
            app = await StartAsync(redis, prefix, data, port, http);
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            await stop.CancelAsync();
            await Task.WhenAll(workers);

            // Transitions whose audit commit died with the process are written by the outbox drain (grace 1 s here).
            await using var mux = await ConnectionMultiplexer.ConnectAsync(redis);
            var outbox = mux.GetDatabase().WithKeyPrefix(prefix);
            for (var i = 0; i < 150 && await outbox.ListLengthAsync(RedisKeys.AuditOutbox("acme")) > 0; i++)
            {
                await Task.Delay(100); // the drain runs on its own timer in the other process
            }
            Assert.Equal(0, await outbox.ListLengthAsync(RedisKeys.AuditOutbox("acme")));

            var approved = new Dictionary<string, int>();
            long? after = null;
            do
            {
                var page = await Get(http, $"/api/v1/audit?tenant=acme&action=approved&limit=500{(after is null ? "" : "&after=" + after)}", "demo-ada-token");
                foreach (var e in page.GetProperty("items").EnumerateArray())
                {
                    approved[e.Str("approvalId")] = approved.GetValueOrDefault(e.Str("approvalId")) + 1;
                }
                after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Number ? page.GetProperty("nextAfter").GetInt64() : null;
            }
            while (after is not null);
            foreach (var id in acknowledged)
            {
                Assert.Equal("approved", (await Get(http, $"/api/v1/approvals/{id}", "demo-acme-agent")).Str("state"));
                Assert.Equal(1, approved.GetValueOrDefault(id));
            }
            Assert.True((await Get(http, "/api/v1/audit/verify?tenant=acme", "demo-ada-token")).GetProperty("intact").GetBoolean());
        }
        finally
        {
            await stop.CancelAsync();
            if (!app.HasExited)
            {
                app.Kill();
            }
            app.Dispose();
        }
    }

    /// <summary>Submits and approves one payment after another; an approval counts once both calls were answered 2xx.</summary>
    private static async Task WorkAsync(HttpClient http, int worker, ConcurrentBag<string> acknowledged, CancellationToken stop)
    {
        for (var n = 0; !stop.IsCancellationRequested; n++)
        {
            var body = new { topic = "finance.payment.execute", env = "production", payload = new { worker, n }, idempotencyKey = $"k9-{worker}-{n}" };
            string? id = null;
            while (id is null && !stop.IsCancellationRequested)
            {
                id = await TryAsync(async () =>
                {
                    using var response = await Send(http, HttpMethod.Post, "/api/v1/jobs", "demo-acme-agent", body);
                    return response.StatusCode == HttpStatusCode.Accepted ? (await response.Json()).Str("approvalId") : null;
                });
            }
            var decided = false;
            while (id is not null && !decided && !stop.IsCancellationRequested)
            {
                decided = await TryAsync(async () =>
                {
                    using var response = await Send(http, HttpMethod.Post, $"/api/v1/approvals/{id}/approve", "demo-alice-token", new { reason = "k9" });
                    return response.StatusCode == HttpStatusCode.OK;
                });
            }
            if (decided)
            {
                acknowledged.Add(id!);
            }
        }
    }

    private static async Task<T?> TryAsync<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await Task.Delay(50); // the process is down or restarting
            return default;
        }
    }

    private static Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string path, string token, object? body = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http.SendAsync(request);
    }

    /// <summary>
    /// A read of the check after the kill. Reading every acknowledged approval back may pass the key's request rate
    /// limit (RateLimits:PerKey): a 429 is waited out as its Retry-After says, as a well-behaved client does.
    /// </summary>
    private static async Task<JsonElement> Get(HttpClient http, string path, string token)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var response = await Send(http, HttpMethod.Get, path, token);
            if (response.StatusCode == System.Net.HttpStatusCode.TooManyRequests && attempt < 20)
            {
                await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1));
                continue;
            }
            Assert.True(response.IsSuccessStatusCode, $"{path}: {response.StatusCode}");
            return await response.Json();
        }
    }

    /// <summary>Starts the app's own build (beside this test assembly) as a process and waits until it is healthy.</summary>
    private static async Task<Process> StartAsync(string redis, string prefix, string data, int port, HttpClient http)
    {
        var folder = AppContext.BaseDirectory;
        var start = new ProcessStartInfo("dotnet", [Path.Combine(folder, "ReviewerPortal.dll"), "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = folder,
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Redis__Configuration"] = redis;
        start.Environment["Redis__KeyPrefix"] = prefix;
        start.Environment["Storage__DataPath"] = data;
        start.Environment["Demo__Enabled"] = "true";
        start.Environment["Approvals__AuditOutboxGrace"] = "00:00:01";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = TestServers.StartQuiet(start);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (await TryAsync(async () => (await http.GetAsync("/healthz")).IsSuccessStatusCode))
            {
                return process;
            }
            Assert.False(process.HasExited, $"the app exited with {(process.HasExited ? process.ExitCode : 0)} at start");
            await Task.Delay(100); // a process starting, not an app timer
        }
        process.Kill();
        throw new TimeoutException("The app did not become healthy in 60 s.");
    }
}
