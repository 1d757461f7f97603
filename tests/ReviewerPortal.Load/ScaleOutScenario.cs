using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Load;

/// <summary>
/// Scale-out: instances of the app on one real 3-master Redis Cluster and one PostgreSQL (both started here, on
/// loopback, unless <c>--redis</c> names a cluster). Measures full cycles/s (submit on one instance, approve on the
/// other) with one and with two instances, then runs the load over both and kills one with SIGKILL in the middle: a
/// client retries on the other (as a load balancer would), the killed one rejoins, and every acknowledged approval is
/// accounted for: lost, decided twice, decided without its audit row, and whether each chain verifies through both.
/// </summary>
public sealed class ScaleOutScenario(LoadOptions options)
{
    public async Task<Report> RunAsync()
    {
        var report = new Report("scaleout");
        var cluster = options.Redis is { } given && given.Contains(',') ? given : await TestServers.RedisClusterAsync()
            ?? throw new InvalidOperationException("redis-server and redis-cli are needed: apt-get install -y redis-server");
        await using var pgServer = await OwnPostgresServer.StartAsync()
            ?? throw new InvalidOperationException("PostgreSQL is needed: apt-get install -y postgresql");
        var database = await pgServer.CreateDatabaseAsync();
        var environment = new Dictionary<string, string>
        {
            ["Storage__Provider"] = "postgres",
            ["Storage__Database"] = database,
        };
        report.Facts["redis"] = $"cluster {cluster}";
        report.Facts["database"] = "PostgreSQL (one database for every instance)";

        await using var a = await AppProcess.StartAsync(options.Repo, cluster, environment: environment);
        var one = await MeasureAsync([a], options.Duration, "one instance");
        await using var b = await AppProcess.StartAsync(options.Repo, cluster, environment: environment);
        var two = await MeasureAsync([a, b], options.Duration, "two instances");
        report.Facts["full cycles/s, one instance"] = one.PerSecond.ToString("F1", CultureInfo.InvariantCulture);
        report.Facts["full cycles/s, two instances"] = two.PerSecond.ToString("F1", CultureInfo.InvariantCulture);

        // The fault: load over both, A killed with SIGKILL in the middle and started again.
        var accepted = new ConcurrentDictionary<string, string>();
        using var stop = new CancellationTokenSource(options.Duration);
        using var progress = new Progress("scaleout: kill -9 of one instance").Start(options.Duration);
        var load = CyclesAsync([a, b], accepted, progress, stop.Token);
        await Task.Delay(options.Duration / 3);
        var down = Stopwatch.StartNew();
        a.Kill();
        await Task.Delay(TimeSpan.FromSeconds(2)); // B alone for a moment
        await a.RestartAsync();
        report.Facts["instance A killed at"] = $"{(options.Duration / 3).TotalSeconds:F0} s, back after {down.Elapsed.TotalMilliseconds:F0} ms";
        await load;
        progress.Dispose();

        await AccountAsync(report, [a, b], accepted);
        return report;
    }

    private async Task<(long Cycles, double PerSecond)> MeasureAsync(AppProcess[] apps, TimeSpan duration, string label)
    {
        var accepted = new ConcurrentDictionary<string, string>();
        using var stop = new CancellationTokenSource(duration);
        using var progress = new Progress($"scaleout: {label}").Start(duration);
        var clock = Stopwatch.StartNew();
        var cycles = await CyclesAsync(apps, accepted, progress, stop.Token);
        return (cycles, cycles / clock.Elapsed.TotalSeconds);
    }

    /// <summary>Agents submit on one instance and a reviewer approves on another; a failed call is retried on the next instance.</summary>
    private async Task<long> CyclesAsync(AppProcess[] apps, ConcurrentDictionary<string, string> accepted, Progress progress, CancellationToken stop)
    {
        var agents = apps.Select(app => app.Client("demo-acme-agent")).ToArray();
        var reviewers = apps.Select(app => app.Client("demo-alice-token")).ToArray();
        long cycles = 0;
        await Task.WhenAll(Enumerable.Range(0, options.Agents).Select(async worker =>
        {
            var n = worker * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                var key = $"scaleout-{Guid.NewGuid():N}";
                var body = new { topic = "finance.payment.execute", env = "production", priority = "high", payload = new { invoice = $"INV-{n}", amount = n++ }, idempotencyKey = key };
                string? id = null;
                for (var attempt = 0; id is null && attempt < 300; attempt++)
                {
                    try
                    {
                        var response = await agents[(worker + attempt) % apps.Length].PostAsJsonAsync("/api/v1/jobs", body);
                        if (response.StatusCode == HttpStatusCode.Accepted)
                        {
                            id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString();
                            accepted[key] = id!;
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { }
                    if (id is null) { await Task.Delay(50); }
                }
                for (var attempt = 0; id is not null && attempt < 300; attempt++)
                {
                    try
                    {
                        var response = await reviewers[(worker + attempt + 1) % apps.Length].PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "scaleout" });
                        if (response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref cycles);
                            progress.Tick();
                            break;
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { }
                    await Task.Delay(50);
                }
            }
        }));
        return cycles;
    }

    private static async Task AccountAsync(Report report, AppProcess[] apps, ConcurrentDictionary<string, string> accepted)
    {
        var readers = apps.Select(app => app.Client("demo-ada-token")).ToArray();
        // Transitions whose audit commit died with the killed instance are written by the drain after its grace.
        var drained = await AuditOutbox.WaitDrainedAsync(apps[0].Redis, "acme");
        report.Facts["audit outbox drained after the load"] = $"{drained.TotalSeconds:F1} s";

        var decisions = new Dictionary<string, int>();
        long? after = null;
        do
        {
            var page = await readers[1].GetFromJsonAsync<JsonElement>($"/api/v1/audit?tenant=acme&action=approved&limit=500{(after is null ? "" : "&after=" + after)}");
            foreach (var e in page.GetProperty("items").EnumerateArray())
            {
                var id = e.GetProperty("approvalId").GetString()!;
                decisions[id] = decisions.GetValueOrDefault(id) + 1;
            }
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Number ? page.GetProperty("nextAfter").GetInt64() : null;
        }
        while (after is not null);

        int lost = 0, pending = 0, decided = 0, unaudited = 0, duplicated = 0;
        var agent = apps[1].Client("demo-acme-agent");
        foreach (var id in accepted.Values.Distinct())
        {
            var response = await agent.GetAsync($"/api/v1/approvals/{id}");
            if (!response.IsSuccessStatusCode) { lost++; continue; }
            var state = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString();
            if (state == "pending") { pending++; continue; }
            decided++;
            var rows = decisions.GetValueOrDefault(id);
            if (rows == 0) { unaudited++; }
            if (rows > 1) { duplicated++; }
        }
        var verify = await Task.WhenAll(readers.Select(r => r.GetFromJsonAsync<JsonElement>("/api/v1/audit/verify?tenant=acme")));
        var intact = verify.All(v => v.GetProperty("intact").GetBoolean())
                     && verify.Select(v => v.GetProperty("verifiedEntries").GetInt32()).Distinct().Count() == 1;
        report.Facts["accepted (202)"] = accepted.Values.Distinct().Count().ToString(CultureInfo.InvariantCulture);
        report.Facts["decided / pending"] = $"{decided} / {pending}";
        report.Facts["lost"] = lost.ToString(CultureInfo.InvariantCulture);
        report.Facts["duplicated decisions"] = duplicated.ToString(CultureInfo.InvariantCulture);
        report.Facts["unaudited decisions"] = unaudited.ToString(CultureInfo.InvariantCulture);
        report.Facts["chain intact through A and B (same count)"] = $"{intact} ({string.Join(" / ", verify.Select(v => v.GetProperty("verifiedEntries").GetInt32()))} entries)";
        report.Facts["verdict"] = lost + duplicated + unaudited == 0 && intact ? "PASS (0 lost, 0 duplicated, 0 unaudited, chain intact)" : "FAIL";
    }
}
