using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace ReviewerPortal.Load;

/// <summary>
/// <c>portal</c>: <c>--tabs</c> reviewer tabs (Playwright pages on Debian's headless chromium, or with
/// <c>--tab-client circuit</c> raw Blazor circuits; each tab its own circuit) open on tenant acme's queue, first idle,
/// then while the cycle load runs. Reports the app's memory per open circuit above the idle app, the time from a probe
/// approval's submit (its 202) to its row in every tab, and whether a tab fell behind (missed a probe, or the last one
/// after the load) or lost its connection.
/// </summary>
public sealed partial class Scenarios
{
    /// <summary>How long a probe stays pending (then it is approved): a tab that has not shown it by then fell behind.</summary>
    private static readonly TimeSpan ProbeLife = TimeSpan.FromSeconds(5);

    private sealed record Probe(string Id, long SubmittedAtMs, string Phase);

    private async Task<Report> PortalAsync()
    {
        var report = new Report("portal");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis, environment: WithDiagnostics, publish: true);
        await WarmUpAsync(app);
        // One signed-in reviewer (alice, an acme approver); every tab is its own circuit. A tab opened and closed
        // first, so the queue page's first-use costs (JIT, caches) are not counted per circuit.
        await using ITabs source = options.TabClient == "circuit" ? await CircuitTabs.StartAsync(app) : await ChromiumTabs.StartAsync(app);
        await (await source.OpenAsync()).DisposeAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));

        var idle = await RuntimeSample.ReadAsync(app, collect: true);
        var tabs = new List<ITab>();
        using (var opening = new Progress("opening tabs").Start(TimeSpan.FromSeconds(options.Tabs)))
        {
            for (var i = 0; i < options.Tabs; i++)
            {
                tabs.Add(await source.OpenAsync());
                opening.Tick();
            }
        }
        await Task.Delay(TimeSpan.FromSeconds(2));
        var open = await RuntimeSample.ReadAsync(app, collect: true);
        if (idle is not null && open is not null)
        {
            var workingSet = (open.WorkingSetBytes - idle.WorkingSetBytes) / (double)tabs.Count / 1024;
            var heap = (open.HeapSizeBytes - idle.HeapSizeBytes) / (double)tabs.Count / 1024;
            report.Facts["tabs (circuits) open"] = $"{tabs.Count} on /queue/acme, {source.Description}";
            report.Facts["app memory per open circuit, working set"] = $"{workingSet:F0} KB {Target(workingSet <= 300, "≤ 300 KB")}";
            report.Facts["app memory per open circuit, managed heap (after a full GC)"] = $"{heap:F0} KB {Target(heap <= 300, "≤ 300 KB")}";
            report.Facts["app idle → with tabs, working set / heap"] =
                $"{idle.WorkingSetBytes / 1048576.0:F0} → {open.WorkingSetBytes / 1048576.0:F0} MiB / {idle.HeapSizeBytes / 1048576.0:F1} → {open.HeapSizeBytes / 1048576.0:F1} MiB";
        }

        var agent = app.Client("demo-acme-agent");
        var reviewer = app.Client("demo-alice-token");
        var probes = new ConcurrentBag<Probe>();

        // Idle: probes with nothing else going on.
        using (var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await ProbeLoopAsync(agent, reviewer, "idle", probes, stop.Token);
        }
        // Under the cycle load (its own rows in the report): probes every 500 ms while it runs.
        using (var stop = new CancellationTokenSource())
        {
            var probing = ProbeLoopAsync(agent, reviewer, "under load", probes, stop.Token);
            await CycleAsync(report, app, warmUp: false);
            stop.Cancel();
            await probing;
        }
        // After the load: one more probe that every tab must show (none is left behind).
        using (var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            await ProbeLoopAsync(agent, reviewer, "after the load", probes, stop.Token);
        }
        var after = await RuntimeSample.ReadAsync(app, collect: true);

        var seen = new List<IReadOnlyDictionary<string, double>>();
        foreach (var tab in tabs)
        {
            seen.Add(await tab.SeenAsync());
        }
        foreach (var (phase, label) in new[] { ("idle", "idle"), ("under load", "load"), ("after the load", "after") })
        {
            var every = new Recorder($"submit → row in every tab ({label})");
            var each = new Recorder($"submit → row in a tab ({label})");
            int missed = 0, total = 0;
            var behind = new HashSet<int>();
            foreach (var probe in probes.Where(p => p.Phase == phase))
            {
                total++;
                var last = 0.0;
                var all = true;
                for (var t = 0; t < tabs.Count; t++)
                {
                    // A row that showed only after the probe's life counts as missed in that tab, as one never seen.
                    var ms = seen[t].TryGetValue(probe.Id, out var at) ? Math.Max(0, at - probe.SubmittedAtMs) : double.MaxValue;
                    if (ms <= ProbeLife.TotalMilliseconds)
                    {
                        each.Add(TimeSpan.FromMilliseconds(ms));
                        last = Math.Max(last, ms);
                    }
                    else
                    {
                        all = false;
                        missed++;
                        behind.Add(t);
                    }
                }
                if (all)
                {
                    every.Add(TimeSpan.FromMilliseconds(last));
                }
                else
                {
                    every.Error();
                }
            }
            var window = TimeSpan.FromSeconds(1);
            report.Rows.Add(every.ToRow(window, "p99 ≤ 250 ms"));
            report.Rows.Add(each.ToRow(window));
            report.Facts[$"probes {phase}"] = $"{total}; rows missing in a tab within {ProbeLife.TotalSeconds:F0} s: {missed} " +
                $"(tabs behind: {(behind.Count == 0 ? "none" : behind.Count + " of " + tabs.Count)})";
        }
        report.Facts["tabs disconnected (WebSocket closed) / crashed"] =
            $"{tabs.Count(t => t.Disconnected)} / {tabs.Count(t => t.Crashed)} of {tabs.Count}";
        if (after is not null)
        {
            report.Facts["app working set / heap after the load (after a full GC, tabs still open)"] = $"{after.WorkingSetBytes / 1048576.0:F0} MiB / {after.HeapSizeBytes / 1048576.0:F0} MiB";
        }
        report.Facts["note"] = "p99 of 'every tab' is over probes (one sample each), of 'one tab' over probes × tabs; " +
            $"the time runs from the submit's 202 at the load tool to the row {source.Arrival} (both on this machine's clock)";
        foreach (var tab in tabs)
        {
            await tab.DisposeAsync();
        }
        return report;
    }

    /// <summary>
    /// Submits a probe approval every 500 ms until <paramref name="stop"/> (at least one), each approved again after
    /// <see cref="ProbeLife"/>, so the queue stays short; waits for the last approvals.
    /// </summary>
    private static async Task ProbeLoopAsync(HttpClient agent, HttpClient reviewer, string phase, ConcurrentBag<Probe> probes, CancellationToken stop)
    {
        var approvals = new List<Task>();
        var n = 0;
        do
        {
            var response = await agent.PostAsJsonAsync("/api/v1/jobs", new
            {
                topic = "finance.payment.execute",
                env = "production",
                priority = "high",
                payload = new { invoice = $"PROBE-{phase}-{n}", amount = n },
                idempotencyKey = $"probe-{Guid.NewGuid():N}",
            }, CancellationToken.None);
            var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            n++;
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                var id = (await response.Content.ReadFromJsonAsync<JsonElement>(CancellationToken.None)).GetProperty("approvalId").GetString()!;
                probes.Add(new Probe(id, at, phase));
                approvals.Add(Task.Run(async () =>
                {
                    await Task.Delay(ProbeLife, CancellationToken.None);
                    await reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "portal probe" }, CancellationToken.None);
                }, CancellationToken.None));
            }
            try
            {
                await Task.Delay(500, stop);
            }
            catch (OperationCanceledException)
            {
            }
        }
        while (!stop.IsCancellationRequested);
        await Task.WhenAll(approvals);
    }
}
