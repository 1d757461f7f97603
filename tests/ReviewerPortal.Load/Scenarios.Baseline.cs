using System.Globalization;
using System.Net;

namespace ReviewerPortal.Load;

/// <summary>
/// <c>baseline</c>: in one run, with the same HTTP client setup and concurrency, the floor the machine allows
/// (<c>GET /healthz</c>: one HTTP call, one Redis round trip) and the full cycle (submit → approve → agent wakes),
/// then the issue's figures with their targets: cycles/s ÷ (floor ÷ 3), app CPU per cycle, Redis commands per cycle,
/// allocations per cycle and the latencies. Targets are printed, never asserted.
/// </summary>
public sealed partial class Scenarios
{
    /// <summary>The app with its runtime figures served on loopback (<c>Diagnostics:Enabled</c>).</summary>
    private static readonly Dictionary<string, string> WithDiagnostics = new() { ["Diagnostics__Enabled"] = "true" };

    private async Task<Report> BaselineAsync()
    {
        var report = new Report("baseline");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis, environment: WithDiagnostics);
        await WarmUpAsync(app);

        var (floorRow, floorCost) = await FloorAsync(app);
        report.Rows.Add(floorRow);

        var sampler = new CycleSampler(app, _redis);
        await CycleAsync(report, app, warmUp: false, sampler);
        var cycle = sampler.Cost!;

        var cyclesPerSecond = cycle.Calls / cycle.Elapsed.TotalSeconds;
        var ratio = cyclesPerSecond / (floorRow.PerSecond / 3);
        var figures = new List<(string Name, string Value)>
        {
            ("floor: GET /healthz requests/s", $"{floorRow.PerSecond:F0} ({options.Agents} concurrent loops, the cycle's agents; same HTTP client setup)"),
            ("floor: Redis commands per /healthz", floorCost.CommandsPerCall is { } perHealthz
                ? $"{perHealthz:F2} ({floorCost.Breakdown(4)}){(Math.Abs(perHealthz - 1) < 0.05 ? " — its one round trip" : " — NOT one round trip")}"
                : "n/a (the server keeps no INFO commandstats)"),
            ("floor: app CPU ms per /healthz", Format(floorCost.CpuMsPerCall, "F3")),
            ("cycles/s", $"{cyclesPerSecond:F1}"),
            ("cycles/s ÷ (floor ÷ 3)", $"{ratio:F3} {Target(ratio >= 0.5, "≥ 0.5")}"),
            ("app CPU ms per cycle", $"{Format(cycle.CpuMsPerCall, "F2")} {Target(cycle.CpuMsPerCall <= 0.7, "≤ 0.7")}"),
            ("Redis commands per cycle", cycle.CommandsPerCall is { } perCycle
                ? $"{perCycle:F1} {Target(perCycle <= 12, "≤ 12")} ({cycle.Breakdown()})"
                : "n/a (the server keeps no INFO commandstats)"),
            ("allocated per cycle", cycle.AllocatedPerCall is { } bytes ? $"{bytes / 1024:F1} KB" : "n/a (diagnostics endpoint off)"),
            ("GC collections in the window (gen0 / gen1 / gen2)", $"{cycle.Gen0} / {cycle.Gen1} / {cycle.Gen2} ({cycle.Calls} cycles in {cycle.Elapsed.TotalSeconds:F1} s)"),
            ("app working set / managed heap after", cycle.End is { } end ? $"{end.WorkingSetBytes / 1048576.0:F0} MiB / {end.HeapSizeBytes / 1048576.0:F0} MiB" : "n/a"),
        };
        foreach (var step in new[] { "submit (202)", "approve call", "decision → agent (long-poll)", "decision → agent (hub)" })
        {
            if (report.Rows.FirstOrDefault(r => r.Step == step) is { } row)
            {
                figures.Add(($"{step} p50 / p95 / p99 ms", string.Create(CultureInfo.InvariantCulture,
                    $"{row.P50:F2} / {row.P95:F2} / {row.P99:F2} {Target(row.P99 <= 10, "p99 ≤ 10 ms")}")));
            }
        }
        // The cycle's own facts (woken before the approve call returned, agents / reviewers, RSS) stay; the figures come first.
        var cycleFacts = report.Facts.Where(f => f.Key != "cycles/s" && f.Key != "Redis commands per cycle").ToList();
        report.Facts.Clear();
        foreach (var (name, value) in figures.Concat(cycleFacts.Select(f => (f.Key, f.Value))))
        {
            report.Facts[name] = value;
        }
        return report;
    }

    private static string Target(bool? met, string target) => $"(target {target}: {(met == true ? "met" : "missed")})";

    private static string Format(double? value, string format) => value?.ToString(format, CultureInfo.InvariantCulture) ?? "n/a";

    /// <summary>
    /// <c>GET /healthz</c> as fast as answered by as many loops as the cycle has agents, anonymous (a bearer would add
    /// the key lookup), through the same client setup; a few unmeasured seconds first.
    /// </summary>
    private async Task<(Row Row, WindowCost Cost)> FloorAsync(AppProcess app)
    {
        var http = app.Client(null);
        var floor = new Recorder("floor: GET /healthz");
        Progress? progress = null;
        async Task LoopAsync(Recorder? recorder, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    using var response = await http.GetAsync("/healthz", HttpCompletionOption.ResponseContentRead, CancellationToken.None);
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        recorder?.Error();
                        continue;
                    }
                    recorder?.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started));
                    progress?.Tick();
                }
                catch (HttpRequestException)
                {
                    recorder?.Error();
                }
            }
        }
        using (var warm = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
        {
            await Task.WhenAll(Enumerable.Range(0, options.Agents).Select(_ => LoopAsync(null, warm.Token)));
        }
        var sampler = new CycleSampler(app, _redis);
        await sampler.StartAsync();
        using (progress = new Progress("floor (/healthz)").Start(options.Duration))
        using (var stop = new CancellationTokenSource(options.Duration))
        {
            await Task.WhenAll(Enumerable.Range(0, options.Agents).Select(_ => LoopAsync(floor, stop.Token)));
        }
        var cost = await sampler.StopAsync(floor.Count);
        return (floor.ToRow(cost.Elapsed), cost);
    }
}
