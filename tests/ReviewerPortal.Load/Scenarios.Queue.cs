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

public sealed partial class Scenarios
{
    // ------------------------------------------------------------------ queue

    private async Task<Report> QueueAsync()
    {
        var report = new Report("queue");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis);
        var seeded = await SeedPendingAsync("acme", options.Pending);
        report.Facts["seeded pending (acme)"] = seeded.ToString(CultureInfo.InvariantCulture);
        var alice = app.Client("demo-alice-token");
        var page = new Recorder("first queue page (50, API)");
        var stats = new Recorder("age histogram (API)");
        var deep = new Recorder("page at rank 90,000 (portal path)");
        for (var i = 0; i < 50; i++)
        {
            var p = await page.TimeAsync(() => alice.GetAsync("/api/v1/approvals?tenant=acme&state=pending&limit=50"));
            var s = await stats.TimeAsync(() => alice.GetAsync("/api/v1/tenants/acme/queue-stats"));
            if (!p.IsSuccessStatusCode) { page.Error(); }
            if (!s.IsSuccessStatusCode) { stats.Error(); }
        }
        var store = await StoreAsync();
        for (var i = 0; i < 50; i++)
        {
            await deep.TimeAsync(() => store.PendingRangeAsync("acme", Math.Max(0, options.Pending - 10_000), 50));
        }
        var total = TimeSpan.FromSeconds(1);
        report.Rows.Add(page.ToRow(total, "≤ 100 ms"));
        report.Rows.Add(stats.ToRow(total, "≤ 100 ms"));
        report.Rows.Add(deep.ToRow(total));
        var body = await (await alice.GetAsync("/api/v1/tenants/acme/queue-stats")).Content.ReadAsStringAsync();
        report.Facts["queue-stats"] = body;
        report.Facts["app memory (RSS)"] = Rss(app.Pid);
        return report;
    }

    private async Task<RedisApprovalStore> StoreAsync()
    {
        var connection = new RedisConnection(Options.Create(new RedisOptions { Configuration = _redis }), Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() }, NullLoggerFactory.Instance);
        await connection.StartAsync(CancellationToken.None);
        return new RedisApprovalStore(connection);
    }

    /// <summary>Writes pending approvals straight into the store's layout (seeding, not measured).</summary>
    private async Task<int> SeedPendingAsync(string tenant, int count)
    {
        var store = await StoreAsync();
        var now = DateTimeOffset.UtcNow;
        using var payload = JsonDocument.Parse("""{"invoice":"INV-seed","amount":1}""");
        using var progress = new Progress("seeding").Start(TimeSpan.FromSeconds(count / 5000.0));
        var done = 0;
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            var created = now.AddMilliseconds(-(count - i) * 500L); // spread over the last ~14 h of ages
            var approval = new Approval
            {
                Id = ApprovalIds.NewApprovalId(created),
                Tenant = tenant,
                JobId = ApprovalIds.NewJobId(created),
                State = ApprovalStates.Pending,
                Job = new JobRequest("finance.payment.execute", "production", null, "normal", payload.RootElement),
                Submitter = "seed",
                PolicySnapshot = new string('0', 64),
                JobHash = new string('0', 64),
                CreatedAt = created,
                ExpiresAt = now.AddDays(2),
            };
            await store.CreateApprovalAsync(approval, TimeSpan.FromDays(3), TimeSpan.FromDays(1), "{}");
            Interlocked.Increment(ref done);
            progress.Tick();
        });
        return done;
    }

    // ------------------------------------------------------------------ fanout

    private async Task<Report> FanoutAsync()
    {
        var report = new Report("fanout");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis);
        var agent = app.Client("demo-acme-agent");
        var alice = app.Client("demo-alice-token");
        var lastSeen = new Recorder($"decision → last of {options.Subscribers} subscribers");
        var each = new Recorder("decision → each subscriber");
        for (var round = 0; round < 10; round++)
        {
            var id = (await (await agent.PostAsJsonAsync("/api/v1/jobs", Payment(round))).Content.ReadFromJsonAsync<JsonElement>())
                .GetProperty("approvalId").GetString()!;
            var clients = Enumerable.Range(0, options.Subscribers).Select(_ => app.Client("demo-oscar-token")).ToList();
            long decidedAt = 0;
            var waits = clients.Select(async c =>
            {
                await c.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60");
                var now = Stopwatch.GetTimestamp();
                each.Add(Stopwatch.GetElapsedTime(Interlocked.Read(ref decidedAt), now));
                return now;
            }).ToList();
            await Task.Delay(1000); // let every long-poll register
            Interlocked.Exchange(ref decidedAt, Stopwatch.GetTimestamp());
            await alice.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "fanout" });
            var wakes = await Task.WhenAll(waits);
            lastSeen.Add(Stopwatch.GetElapsedTime(decidedAt, wakes.Max()));
            clients.ForEach(c => c.Dispose());
        }
        report.Rows.Add(lastSeen.ToRow(TimeSpan.FromSeconds(1), "p99 ≤ 250 ms"));
        report.Rows.Add(each.ToRow(TimeSpan.FromSeconds(1)));
        report.Facts["subscribers"] = $"{options.Subscribers} long-polls on one approval (the agent hub comes with the dispatch issue)";
        return report;
    }
}
