using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;

namespace ReviewerPortal.Load;

/// <summary>
/// Tenant acme floods the API far over its per-key rate limit while tenant globex submits at a modest, paced rate:
/// globex's submit latency is measured alone first, then during the flood (printed, not asserted; the target is
/// p99 during the flood within 2× of idle). <c>--flood-rate N</c> paces the flood at N requests/s (open loop);
/// 0, the default, floods with 32 closed loops as fast as the machine answers. Every loop is bounded in time and
/// count and stops by itself.
/// </summary>
public sealed class FloodScenario(LoadOptions options, string redis)
{
    private const double ModestPerSecond = 20;
    private const int PerKeyPermitsPerSecond = 50;
    private const int Flooders = 32;

    public async Task<Report> RunAsync()
    {
        var report = new Report("flood");
        await using var app = await AppProcess.StartAsync(options.Repo, redis, environment: new Dictionary<string, string>
        {
            ["RateLimits__PerKey__PermitsPerSecond"] = PerKeyPermitsPerSecond.ToString(CultureInfo.InvariantCulture),
            ["RateLimits__PerKey__Burst"] = (PerKeyPermitsPerSecond * 2).ToString(CultureInfo.InvariantCulture),
        });
        var acme = app.Client("demo-acme-agent");
        var globex = app.Client("demo-globex-agent");
        var phase = TimeSpan.FromSeconds(Math.Max(5, options.Duration.TotalSeconds / 2));

        // Warm-up: JIT and connections, unmeasured, both tenants under their limits.
        await PacedAsync(globex, "globex", TimeSpan.FromSeconds(5), new Recorder("warm-up"), 0);
        await PacedAsync(acme, "acme", TimeSpan.FromSeconds(2), new Recorder("warm-up"), 10_000_000);

        var idle = new Recorder("globex submit, idle (20/s)");
        using (new Progress("globex idle").Start(phase))
        {
            await PacedAsync(globex, "globex", phase, idle, 1_000_000);
        }

        var during = new Recorder("globex submit, during acme flood");
        var accepted = new Recorder("acme flood: 202 answers");
        var limited = new Recorder("acme flood: 429 answers");
        long other = 0;
        var started = Stopwatch.StartNew();
        using (var progress = new Progress("flood").Start(phase))
        using (var stop = new CancellationTokenSource(phase))
        {
            var paced = options.FloodRate > 0;
            var budget = paced ? options.FloodRate * phase.TotalSeconds : double.MaxValue;
            var issued = 0L;
            var flood = Enumerable.Range(0, Flooders).Select(async f =>
            {
                var n = 20_000_000 + f * 1_000_000;
                var floodClock = Stopwatch.StartNew();
                while (!stop.IsCancellationRequested)
                {
                    if (paced)
                    {
                        // Open loop at FloodRate overall: this loop's next request is due at its share of the schedule.
                        var mine = Interlocked.Increment(ref issued);
                        if (mine > budget)
                        {
                            break;
                        }
                        var due = TimeSpan.FromSeconds(mine / (double)options.FloodRate) - floodClock.Elapsed;
                        if (due > TimeSpan.Zero)
                        {
                            try { await Task.Delay(due, stop.Token); } catch (OperationCanceledException) { break; }
                        }
                    }
                    var begin = Stopwatch.GetTimestamp();
                    try
                    {
                        using var response = await acme.PostAsJsonAsync("/api/v1/jobs", Submission("acme", n++));
                        (response.StatusCode switch
                        {
                            HttpStatusCode.Accepted => accepted,
                            HttpStatusCode.TooManyRequests => limited,
                            _ => null,
                        })?.Add(Stopwatch.GetElapsedTime(begin));
                        if (response.StatusCode is not (HttpStatusCode.Accepted or HttpStatusCode.TooManyRequests))
                        {
                            Interlocked.Increment(ref other);
                        }
                        progress.Tick();
                    }
                    catch (HttpRequestException)
                    {
                        Interlocked.Increment(ref other);
                    }
                }
            }).ToList();
            await PacedAsync(globex, "globex", phase, during, 2_000_000);
            await Task.WhenAll(flood);
        }
        var elapsed = started.Elapsed;

        report.Rows.Add(idle.ToRow(phase));
        report.Rows.Add(during.ToRow(phase, "p99 ≤ 2× idle p99"));
        report.Rows.Add(accepted.ToRow(elapsed));
        report.Rows.Add(limited.ToRow(elapsed));
        var idleRow = idle.ToRow(phase);
        var duringRow = during.ToRow(phase);
        report.Facts["globex p50 idle → during flood"] = string.Create(CultureInfo.InvariantCulture, $"{idleRow.P50:F2} ms → {duringRow.P50:F2} ms");
        report.Facts["globex p99 idle → during flood"] = string.Create(CultureInfo.InvariantCulture,
            $"{idleRow.P99:F2} ms → {duringRow.P99:F2} ms ({duringRow.P99 / idleRow.P99:F2}×)");
        report.Facts["globex errors (not 202) during the flood"] = during.Errors.ToString(CultureInfo.InvariantCulture);
        report.Facts["acme limit"] = $"RateLimits:PerKey {PerKeyPermitsPerSecond}/s, burst {PerKeyPermitsPerSecond * 2}; {Flooders} concurrent loops, " +
                                     (options.FloodRate > 0 ? $"paced at {options.FloodRate}/s" : "unpaced (as fast as answered)");
        report.Facts["acme other answers or failures"] = other.ToString(CultureInfo.InvariantCulture);
        return report;
    }

    private static object Submission(string tenant, int n) => new
    {
        topic = "finance.payment.execute",
        env = "production",
        priority = "high",
        payload = new { invoice = $"{tenant}-{n}", amount = n },
        idempotencyKey = $"flood-{tenant}-{Guid.NewGuid():N}",
    };

    /// <summary>Submits at <see cref="ModestPerSecond"/> for <paramref name="duration"/> (open loop: one request every 50 ms).</summary>
    private static async Task PacedAsync(HttpClient client, string tenant, TimeSpan duration, Recorder recorder, int first)
    {
        var interval = TimeSpan.FromSeconds(1 / ModestPerSecond);
        var clock = Stopwatch.StartNew();
        var inflight = new List<Task>();
        for (var i = 0; clock.Elapsed < duration; i++)
        {
            var n = first + i;
            inflight.Add(Task.Run(async () =>
            {
                var begin = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await client.PostAsJsonAsync("/api/v1/jobs", Submission(tenant, n));
                    if (response.StatusCode == HttpStatusCode.Accepted)
                    {
                        recorder.Add(Stopwatch.GetElapsedTime(begin));
                    }
                    else
                    {
                        recorder.Error();
                    }
                }
                catch (HttpRequestException)
                {
                    recorder.Error();
                }
            }));
            var next = interval * (i + 1) - clock.Elapsed;
            if (next > TimeSpan.Zero)
            {
                await Task.Delay(next);
            }
        }
        await Task.WhenAll(inflight);
    }
}
