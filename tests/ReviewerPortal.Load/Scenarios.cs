using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Load;

/// <summary>The load and fault scenarios. Every request loop is bounded in time and count and stops by itself.</summary>
public sealed partial class Scenarios(LoadOptions options)
{
    private EmbeddedGarnet? _garnet;
    private string _redis = "";
    private string _garnetData = "";

    public async Task<int> RunAsync()
    {
        _redis = options.Redis ?? await StartGarnetAsync();
        Console.WriteLine($"Redis: {_redis}{(options.Redis is null ? " (embedded Garnet, append-only log on)" : "")}");
        var failed = false;
        try
        {
            var runs = options.Scenario == "all" ? ["baseline", "fanout", "queue", "faults", "timers"] : new[] { options.Scenario };
            foreach (var scenario in runs)
            {
                var report = scenario switch
                {
                    "cycle" => await CycleAsync(new Report("cycle")),
                    "baseline" => await BaselineAsync(),
                    "queue" => await QueueAsync(),
                    "fanout" => await FanoutAsync(),
                    "timers" => await TimersAsync(),
                    "garnet-kill" => await new GarnetKillScenario(options).RunAsync(),
                    "scaleout" => await new ScaleOutScenario(options).RunAsync(),
                    "flood" => await new FloodScenario(options, _redis).RunAsync(),
                    "portal" => await PortalAsync(),
                    _ => await FaultsAsync(),
                };
                report.Print();
                await report.SaveAsync(options.Out);
                failed |= report.Facts.GetValueOrDefault("verdict") == "FAIL";
            }
        }
        finally
        {
            if (_garnet is not null)
            {
                await _garnet.DisposeAsync();
            }
        }
        return failed ? 1 : 0;
    }

    private async Task<string> StartGarnetAsync(int? port = null)
    {
        _garnetData = _garnetData.Length > 0 ? _garnetData : Path.Combine(Path.GetTempPath(), "rp-load", "garnet-" + Guid.NewGuid().ToString("N"));
        _garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions
        {
            DataPath = _garnetData,
            Port = port,
            // Per-command counts for the figures of commands per cycle (baseline, cycle, portal); off elsewhere.
            CommandStats = options.Scenario is "baseline" or "cycle" or "portal",
        }, NullLogger.Instance, CancellationToken.None);
        return _garnet.Endpoint;
    }

    private static object Payment(int n) => new
    {
        topic = "finance.payment.execute",
        env = "production",
        priority = "high",
        payload = new { invoice = $"INV-{n}", amount = n },
        idempotencyKey = $"load-{Guid.NewGuid():N}",
    };

    // ------------------------------------------------------------------ cycle

    /// <param name="given">The app to drive (baseline, portal); null starts one for this run.</param>
    /// <param name="warmUp">Run the unmeasured warm-up first (off where the caller warmed the app up already).</param>
    /// <param name="sampler">Samples the app's CPU, Redis commands and runtime figures around the measured window.</param>
    private async Task<Report> CycleAsync(Report report, AppProcess? given = null, bool warmUp = true, CycleSampler? sampler = null)
    {
        await using var owned = given is null ? await AppProcess.StartAsync(options.Repo, _redis) : null;
        var app = given ?? owned!;
        var agentHttp = app.Client("demo-acme-agent");
        var reviewers = new[] { app.Client("demo-alice-token"), app.Client("demo-bob-token") };
        var submit = new Recorder("submit (202)");
        var approve = new Recorder("approve call");
        var toAgent = new Recorder("decision → agent (long-poll)");
        var toHubAgent = new Recorder("decision → agent (hub)");
        await using var hubClient = new ReviewerPortal.Client.ReviewerPortalClient(new Uri(app.BaseUrl), "demo-acme-agent");
        await hubClient.ConnectAsync();
        var viaHub = new ConcurrentDictionary<string, bool>();
        var cycle = new Recorder("full cycle");
        if (warmUp)
        {
            await WarmUpAsync(app);
        }
        var commandsBefore = await CommandStatsAsync();
        if (sampler is not null)
        {
            await sampler.StartAsync();
        }
        var approvedAt = new ConcurrentDictionary<string, long>();
        var wokeAt = new ConcurrentDictionary<string, long>();
        var queue = Channel.CreateUnbounded<string>();
        using var stop = new CancellationTokenSource(options.Duration);
        using var progress = new Progress("cycles").Start(options.Duration);
        var started = Stopwatch.StartNew();

        var agents = Enumerable.Range(0, options.Agents).Select(async a =>
        {
            var n = a * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                var begin = Stopwatch.GetTimestamp();
                try
                {
                    var response = await submit.TimeAsync(() => agentHttp.PostAsJsonAsync("/api/v1/jobs", Payment(n++)));
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        submit.Error();
                        continue;
                    }
                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString()!;
                    string? state;
                    if (a % 2 == 1)
                    {
                        // Half the agents wait on the SignalR hub, half on the long-poll endpoint.
                        viaHub[id] = true;
                        var hubWait = hubClient.WaitForDecisionAsync(id, TimeSpan.FromSeconds(60));
                        await queue.Writer.WriteAsync(id);
                        var approval = await hubWait;
                        wokeAt[id] = Stopwatch.GetTimestamp();
                        state = approval?.State;
                    }
                    else
                    {
                        var wait = agentHttp.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60");
                        await queue.Writer.WriteAsync(id);
                        var decided = await wait;
                        wokeAt[id] = Stopwatch.GetTimestamp();
                        state = (await decided.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString();
                    }
                    if (state != "approved")
                    {
                        toAgent.Error();
                        continue;
                    }
                    cycle.Add(Stopwatch.GetElapsedTime(begin));
                    progress.Tick();
                }
                catch (HttpRequestException)
                {
                    submit.Error();
                }
            }
        }).ToList();

        var deciders = Enumerable.Range(0, options.Reviewers).Select(async r =>
        {
            var client = reviewers[r % reviewers.Length];
            await foreach (var id in queue.Reader.ReadAllAsync())
            {
                try
                {
                    var response = await approve.TimeAsync(() => client.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "load" }));
                    approvedAt[id] = Stopwatch.GetTimestamp();
                    if (!response.IsSuccessStatusCode)
                    {
                        approve.Error();
                    }
                }
                catch (HttpRequestException)
                {
                    approve.Error();
                }
            }
        }).ToList();

        await Task.WhenAll(agents);
        queue.Writer.Complete();
        await Task.WhenAll(deciders);
        var elapsed = started.Elapsed;
        if (sampler is not null)
        {
            await sampler.StopAsync(cycle.Count);
        }
        var beforeReturn = 0;
        foreach (var (id, woke) in wokeAt)
        {
            if (approvedAt.TryGetValue(id, out var approved))
            {
                // The agent often wakes before the approver's own response is back: that counts as 0.
                beforeReturn += woke <= approved ? 1 : 0;
                (viaHub.ContainsKey(id) ? toHubAgent : toAgent).Add(woke > approved ? Stopwatch.GetElapsedTime(approved, woke) : TimeSpan.Zero);
            }
        }
        report.Facts["agent woke before the approve call returned"] = $"{beforeReturn} of {toAgent.Count + toHubAgent.Count}";
        report.Rows.Add(submit.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(approve.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(toAgent.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(toHubAgent.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(cycle.ToRow(elapsed));
        report.Facts["cycles/s"] = (cycle.Count / elapsed.TotalSeconds).ToString("F1", CultureInfo.InvariantCulture);
        var commandsAfter = await CommandStatsAsync();
        if (commandsBefore.Count > 0 && commandsAfter.Count > 0 && cycle.Count > 0)
        {
            var delta = commandsAfter.ToDictionary(c => c.Key, c => c.Value - commandsBefore.GetValueOrDefault(c.Key)).Where(c => c.Value > 0).ToList();
            report.Facts["Redis commands per cycle"] = (delta.Sum(c => c.Value) / (double)cycle.Count).ToString("F1", CultureInfo.InvariantCulture) + " (" +
                string.Join(", ", delta.OrderByDescending(c => c.Value).Take(8).Select(c => $"{c.Key} {c.Value / (double)cycle.Count:F1}")) + ")";
        }
        report.Facts["agents / reviewers"] = $"{options.Agents} / {options.Reviewers}";
        report.Facts["app memory (RSS)"] = Rss(app.Pid);
        return report;
    }

    /// <summary>Unmeasured cycles first, so the figures are of a warm process (tiered JIT done), not of its start-up.</summary>
    private async Task WarmUpAsync(AppProcess app)
    {
        var agent = app.Client("demo-acme-agent");
        var reviewer = app.Client("demo-bob-token");
        using var stop = new CancellationTokenSource(options.Warmup);
        using var progress = new Progress("warm-up").Start(options.Warmup);
        await Task.WhenAll(Enumerable.Range(0, options.Agents).Select(async a =>
        {
            var n = 900_000_000 + a * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var response = await agent.PostAsJsonAsync("/api/v1/jobs", Payment(n++));
                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString();
                    var wait = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=10");
                    await reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "warm-up" });
                    await wait;
                    progress.Tick();
                }
                catch (Exception ex) when (ex is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException)
                {
                }
            }
        }));
    }

    /// <summary>The server's per-command call counts (INFO commandstats); empty where the server does not keep them.</summary>
    private Task<Dictionary<string, long>> CommandStatsAsync() => CommandStatsAsync(_redis);

    /// <summary>The per-command call counts of the server at <paramref name="redis"/> (INFO commandstats); empty where it does not keep them.</summary>
    internal static async Task<Dictionary<string, long>> CommandStatsAsync(string redis)
    {
        try
        {
            await using var mux = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis + ",allowAdmin=true");
            var info = await mux.GetServer(mux.GetEndPoints()[0]).InfoAsync("commandstats");
            var counts = new Dictionary<string, long>();
            foreach (var (key, value) in info.SelectMany(g => g))
            {
                // cmdstat_get:calls=12,usec=…
                var calls = value.Split(',').FirstOrDefault(p => p.StartsWith("calls=", StringComparison.Ordinal));
                if (key.StartsWith("cmdstat_", StringComparison.Ordinal) && calls is not null)
                {
                    counts[key["cmdstat_".Length..]] = long.Parse(calls["calls=".Length..], CultureInfo.InvariantCulture);
                }
            }
            return counts;
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or FormatException)
        {
            return [];
        }
    }

    internal static string Rss(int? pid)
    {
        if (pid is null || !File.Exists($"/proc/{pid}/status"))
        {
            return "n/a";
        }
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return line?["VmRSS:".Length..].Trim() ?? "n/a";
    }
}
