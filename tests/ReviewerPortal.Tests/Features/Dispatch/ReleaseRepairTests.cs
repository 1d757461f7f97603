using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>
/// A Garnet killed with <c>kill -9</c> and restarted on its append-only log once came back with an approval that read
/// <c>approved</c> and with no trace of its release in the dispatch sets: its job was never published (load harness,
/// faults scenario, 1 of 23,392). Garnet logs a script's writes one by one, so a restart can keep part of a step. The
/// reconciler finds every audited release whose entry is gone and puts it back, once, audited.
/// </summary>
public sealed class ReleaseRepairTests
{
    [Fact]
    public async Task A_release_whose_dispatch_entry_redis_lost_is_put_back_once_and_its_job_published_once()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" });
        await app.UseRedisSinkAsync();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var approved = await ApprovedAsync(app);
        var intact = await ApprovedAsync(app);
        var allowed = (await (await app.Agent("acme").Submit(new { topic = "knowledge.read", env = "production", payload = new { q = 1 } })).Json()).Str("jobId");
        var published = await ApprovedAsync(app);
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();
        // Publish only the third approval's job: it is then 'dispatched', awaiting its result in the unacknowledged set.
        foreach (var other in new[] { DispatchMember.ForApproval(approved), DispatchMember.ForApproval(intact), DispatchMember.ForJob(allowed) })
        {
            await redis.SortedSetRemoveAsync(RedisKeys.DispatchOutbox("acme"), other);
        }
        await dispatcher.RunDueAsync(CancellationToken.None);
        Assert.Single(await app.RedisSinkAsync());
        await redis.SortedSetAddAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(intact), 0);

        // Redis lost the approval's and the allowed job's outbox entries and the published one's unacknowledged entry:
        // their records still read 'pending' / 'dispatched'.
        Assert.True(await redis.SortedSetRemoveAsync(RedisKeys.Unacknowledged("acme"), DispatchMember.ForApproval(published)));
        Assert.Equal("pending", (string?)await redis.HashGetAsync(RedisKeys.Approval("acme", approved), "dispatch"));
        Assert.Equal("pending", (string?)await redis.HashGetAsync(RedisKeys.Job("acme", allowed), "dispatch"));
        var reconciler = app.Services.GetRequiredService<AuditReconciler>();
        await reconciler.RunOnceAsync(CancellationToken.None);
        await reconciler.RunOnceAsync(CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            await dispatcher.RunDueAsync(CancellationToken.None);
        }

        var jobs = (await app.RedisSinkAsync()).Select(m => m.Str("jobId")).ToList();
        Assert.Equal(4, jobs.Count);
        Assert.Equal(4, jobs.Distinct().Count());
        Assert.Contains(await JobIdAsync(app, approved), jobs);
        Assert.Contains(allowed, jobs);
        Assert.Equal(1, await app.AuditCountAsync(approved, ReleaseRepair.Action));
        Assert.Equal(0, await app.AuditCountAsync(intact, ReleaseRepair.Action));
        Assert.Equal(1, await app.AuditCountAsync(published, ReleaseRepair.Action));
        // The published job awaits its result again: due when it would have been (the acknowledgement timeout after
        // it was published), then replayed.
        var due = await redis.SortedSetScoreAsync(RedisKeys.Unacknowledged("acme"), DispatchMember.ForApproval(published));
        var dispatchedAt = (long)await redis.HashGetAsync(RedisKeys.Approval("acme", published), "dispatchedAt");
        var ackTimeout = app.Services.GetRequiredService<IOptions<DispatchOptions>>().Value.AckTimeout;
        Assert.Equal((double?)(dispatchedAt + (long)ackTimeout.TotalMilliseconds), due);
        Assert.True((await app.Services.GetRequiredService<AuditLog>().VerifyAsync("acme", CancellationToken.None)).Intact);
    }

    [Fact]
    public async Task After_garnet_is_killed_and_restarted_a_lost_release_is_published_without_anyone_asking()
    {
        var data = TestServers.NewTempDirectory("relink-redis");
        var port = FreePort.Pick();
        var garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data, Port = port },
            NullLogger.Instance, CancellationToken.None);
        // The app's own dispatcher is off so the test decides when a job is published: the loss below happens before
        // any publish could, and the publish after it is the test's own pass.
        await using var app = await TestApp.StartAsync(redis: garnet.Endpoint + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000",
            settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" });
        await app.UseRedisSinkAsync();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var submitted = await app.Agent("acme").SubmitPayment(7);
        var id = submitted.Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        // What a restart can lose: the release's outbox entry, while the record keeps 'dispatch: pending'.
        Assert.True(await redis.SortedSetRemoveAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(id)));
        await redis.ExecuteAsync("COMMITAOF"); // the loss is in the log before the kill

        System.Diagnostics.Process.GetProcessById(garnet.ProcessId).Kill(); // SIGKILL: no shutdown
        await using var back = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data, Port = port },
            NullLogger.Instance, CancellationToken.None);

        // Nobody calls the reconciler: the app runs a pass once it is connected again.
        for (var i = 0; i < 300 && await app.AuditCountAsync(id, ReleaseRepair.Action) == 0; i++)
        {
            await Task.Delay(100);
        }
        Assert.Equal(1, await app.AuditCountAsync(id, ReleaseRepair.Action));
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();
        await dispatcher.RunDueAsync(CancellationToken.None);
        await dispatcher.RunDueAsync(CancellationToken.None);
        var message = Assert.Single(await app.RedisSinkAsync());
        Assert.Equal(submitted.Str("jobId"), message.Str("jobId"));
        Assert.Equal(1, await app.AuditCountAsync(id, "approved"));
    }

    [SkippableFact]
    public async Task Two_instances_that_find_the_same_lost_release_put_it_back_once()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, "postgresql is needed: apt-get install -y postgresql");
        var prefix = $"r{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" };
        await using var a = await TestApp.StartAsync(postgres: pg, keyPrefix: prefix, settings: settings);
        await using var b = await TestApp.StartAsync(postgres: pg, keyPrefix: prefix, settings: settings);
        await a.UseRedisSinkAsync();
        var id = await ApprovedAsync(a);
        var redis = a.Services.GetRequiredService<RedisConnection>().Database;
        Assert.True(await redis.SortedSetRemoveAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(id)));

        // Both reconcilers, several passes each, at once.
        await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
            (i % 2 == 0 ? a : b).Services.GetRequiredService<AuditReconciler>().RunOnceAsync(CancellationToken.None)));
        foreach (var app in new[] { a, b, a })
        {
            await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        }

        Assert.Equal(1, await a.AuditCountAsync(id, ReleaseRepair.Action));
        var message = Assert.Single(await a.RedisSinkAsync());
        Assert.Equal(id, message.Str("approvalId"));
        Assert.True((await b.Services.GetRequiredService<AuditLog>().VerifyAsync("acme", CancellationToken.None)).Intact);
    }

    [SkippableFact]
    public async Task The_decision_writes_the_release_in_the_same_command_as_the_state()
    {
        // A restart that keeps a prefix of a script's logged writes then keeps both or neither. Redis's MONITOR shows
        // the commands a script runs ("lua" lines).
        Skip.If(TestServers.RedisServerPath() is null, "redis-server is not installed");
        await using var server = await RedisServerProcess.StartAsync();
        await using var app = await TestApp.StartAsync(redis: server.Endpoint,
            settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" });
        await app.UseRedisSinkAsync();
        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        using var monitor = new System.Net.Sockets.TcpClient();
        await monitor.ConnectAsync("127.0.0.1", server.Port);
        var stream = monitor.GetStream();
        await stream.WriteAsync("MONITOR\r\n"u8.ToArray());
        var reader = new StreamReader(stream);
        Assert.Equal("+OK", await reader.ReadLineAsync());

        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);

        var key = app.KeyPrefix + (string)RedisKeys.Approval("acme", id)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        string? line;
        do
        {
            line = await reader.ReadLineAsync(timeout.Token);
        }
        while (line is not null && !(line.Contains("lua]") && line.Contains($"\"HSET\" \"{key}\" \"state\" \"approved\"")));
        Assert.NotNull(line);
        Assert.Contains("\"dispatch\" \"pending\"", line);
        Assert.Contains("\"approvalGranted\" \"true\"", line);
    }

    private static async Task<string> ApprovedAsync(TestApp app)
    {
        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        return id;
    }

    private static async Task<string> JobIdAsync(TestApp app, string approvalId) =>
        (string)(await app.Services.GetRequiredService<RedisConnection>().Database.HashGetAsync(RedisKeys.Approval("acme", approvalId), "jobId"))!;
}
