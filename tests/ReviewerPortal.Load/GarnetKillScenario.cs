using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Load;

/// <summary>
/// The embedded Garnet's claim, measured: rounds of a burst of approvals created with the app's own script, Garnet
/// killed with SIGKILL within milliseconds of the last acknowledgement, restarted on its append-only log; every
/// acknowledged approval must be there again. Three ways: replies as Garnet sends them (commit-wait off), with the
/// app's durability barrier (a <c>COMMITAOF</c> after each group of writes, before they are acknowledged, as the audit
/// writer does per batch), and with <c>--aof-commit-wait</c> (every reply waits for the disk).
/// </summary>
public sealed class GarnetKillScenario(LoadOptions options)
{
    public async Task<Report> RunAsync()
    {
        var report = new Report("garnet-kill");
        foreach (var (commitWait, barrier) in new[] { (false, false), (false, true), (true, false) })
        {
            var (acked, lost, roundsWithLoss, killGap, restart) = await RoundsAsync(commitWait, barrier);
            var label = commitWait ? "commit-wait on" : barrier ? "COMMITAOF barrier per batch" : "no barrier, no commit-wait";
            report.Facts[$"{label}: rounds"] = options.Rounds.ToString();
            report.Facts[$"{label}: acknowledged"] = acked.ToString();
            report.Facts[$"{label}: lost after kill -9"] = $"{lost} ({roundsWithLoss} rounds with a loss)";
            report.Facts[$"{label}: last reply -> SIGKILL"] = $"{killGap.TotalMilliseconds:F2} ms median";
            report.Facts[$"{label}: restart + recovery"] = $"{restart.TotalMilliseconds:F0} ms median";
            if (lost > 0)
            {
                report.Facts["verdict"] = "FAIL";
            }
        }
        report.Facts.TryAdd("verdict", "PASS");
        return report;
    }

    private async Task<(long Acked, long Lost, int RoundsWithLoss, TimeSpan KillGap, TimeSpan Restart)> RoundsAsync(bool commitWait, bool barrier)
    {
        var data = Path.Combine(Path.GetTempPath(), "rp-load", "garnet-kill-" + Guid.NewGuid().ToString("N"));
        var now = DateTimeOffset.UtcNow;
        long acked = 0, lost = 0;
        var roundsWithLoss = 0;
        var gaps = new List<double>();
        var restarts = new List<double>();
        var garnet = await StartAsync(data, commitWait);
        for (var round = 0; round < options.Rounds; round++)
        {
            var ids = new List<string>();
            await using (var connection = await ConnectAsync(garnet.Endpoint))
            {
                var store = new RedisApprovalStore(connection);
                var burst = Enumerable.Range(0, options.Burst).Select(i => Approval($"r{round}", now)).ToList();
                var replies = new List<(string Id, CreateStatus Status)>();
                // Groups of 64 at once, as the audit writer batches them; with the barrier a group is acknowledged
                // only after COMMITAOF returned.
                foreach (var group in burst.Chunk(64))
                {
                    var done = await Task.WhenAll(group.Select(async a =>
                        (a.Id, (await store.CreateApprovalAsync(a, TimeSpan.FromDays(2), TimeSpan.FromDays(2), "{}")).Status)));
                    if (barrier)
                    {
                        await connection.Database.ExecuteAsync("COMMITAOF");
                    }
                    replies.AddRange(done);
                }
                var lastReply = Stopwatch.GetTimestamp();
                Process.GetProcessById(garnet.ProcessId).Kill(); // SIGKILL: no shutdown, no flush
                gaps.Add(Stopwatch.GetElapsedTime(lastReply).TotalMilliseconds);
                ids.AddRange(replies.Where(r => r.Status == CreateStatus.Created).Select(r => r.Id));
            }
            acked += ids.Count;
            var restarted = Stopwatch.StartNew();
            garnet = await StartAsync(data, commitWait);
            restarts.Add(restarted.Elapsed.TotalMilliseconds);
            await using (var connection = await ConnectAsync(garnet.Endpoint))
            {
                var store = new RedisApprovalStore(connection);
                var back = await Task.WhenAll(ids.Select(id => store.GetApprovalAsync("load", id)));
                var missing = back.Count(a => a is null);
                lost += missing;
                roundsWithLoss += missing > 0 ? 1 : 0;
            }
            Console.Error.Write($"\r  garnet-kill (commit-wait {(commitWait ? "on" : "off")}, barrier {(barrier ? "on" : "off")}): round {round + 1}/{options.Rounds}, {acked} acknowledged, {lost} lost   ");
        }
        Console.Error.WriteLine();
        await garnet.DisposeAsync();
        Directory.Delete(data, recursive: true);
        return (acked, lost, roundsWithLoss, TimeSpan.FromMilliseconds(Median(gaps)), TimeSpan.FromMilliseconds(Median(restarts)));
    }

    private static double Median(List<double> values) => values.Count == 0 ? 0 : values.Order().ElementAt(values.Count / 2);

    private static Task<EmbeddedGarnet> StartAsync(string data, bool commitWait) =>
        EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data, CommitWait = commitWait }, NullLogger.Instance, CancellationToken.None);

    private static async Task<RedisConnection> ConnectAsync(string endpoint)
    {
        var connection = new RedisConnection(
            Options.Create(new RedisOptions { Configuration = endpoint }),
            Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() },
            NullLoggerFactory.Instance);
        await connection.StartAsync(CancellationToken.None);
        return connection;
    }

    private static Approval Approval(string submitter, DateTimeOffset now) => new()
    {
        Id = ApprovalIds.NewApprovalId(now),
        Tenant = "load",
        JobId = ApprovalIds.NewJobId(now),
        State = ApprovalStates.Pending,
        Job = new JobRequest("finance.payment.execute", "production", null, "high", JsonDocument.Parse("""{"amount":1}""").RootElement),
        Submitter = submitter,
        PolicySnapshot = new string('1', 64),
        JobHash = new string('2', 64),
        CreatedAt = now,
        ExpiresAt = now.AddDays(1),
    };
}
