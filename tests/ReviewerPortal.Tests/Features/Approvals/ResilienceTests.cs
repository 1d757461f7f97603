using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>Restarts and outages: nothing pending is lost, a store that is away is a 503, recovery needs no one.</summary>
public sealed class ResilienceTests
{
    [Fact]
    public async Task Restart_of_the_app_keeps_pending_approvals_with_their_deadlines()
    {
        var data = TestServers.NewTempDirectory("restart");
        var prefix = $"r{Guid.NewGuid():N}:";
        List<(string Id, DateTimeOffset ExpiresAt)> pending = [];
        await using (var first = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix))
        {
            for (var i = 0; i < 3; i++)
            {
                var body = await first.Agent("acme").SubmitPayment(i);
                pending.Add((body.Str("approvalId"), body.GetProperty("expiresAt").GetDateTimeOffset()));
            }
        }

        await using var second = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix);
        var list = await (await second.Agent("acme").GetAsync("/api/v1/approvals?state=pending")).Json();

        Assert.Equal(pending.Select(p => p.Id), list.GetProperty("items").EnumerateArray().Select(i => i.Str("id")));
        foreach (var (id, expiresAt) in pending)
        {
            var approval = await (await second.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
            Assert.Equal(expiresAt, approval.GetProperty("expiresAt").GetDateTimeOffset(), TimeSpan.FromMilliseconds(1));
        }
        var redis = second.Services.GetRequiredService<RedisConnection>().Database;
        Assert.Equal(3, await redis.SortedSetLengthAsync(RedisKeys.Timers("acme")));
        Assert.True((await redis.KeyTimeToLiveAsync(RedisKeys.Approval("acme", pending[0].Id))) > TimeSpan.FromHours(24),
            "the key's own TTL is a safety net set later than the deadline");
        // And they can still be decided.
        Assert.Equal(HttpStatusCode.OK, (await second.Account("alice").Approve(pending[0].Id)).StatusCode);
    }

    [Fact]
    public async Task Redis_outage_answers_503_naming_it_and_the_app_recovers_by_itself()
    {
        var redisData = TestServers.NewTempDirectory("outage-redis");
        var port = FreePort.Pick();
        var garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = redisData, Port = port },
            NullLogger.Instance, CancellationToken.None);
        await using var app = await TestApp.StartAsync(redis: garnet.Endpoint + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000");
        var agent = app.Agent("acme");
        var before = (await agent.SubmitPayment()).Str("approvalId");

        await garnet.DisposeAsync(); // the server goes away

        var health = await app.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        Assert.Equal("down", (await health.Json()).Str("redis"));
        var submit = await agent.Submit(new { topic = "finance.payment.execute", env = "production", payload = new { a = 1 } });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
        Assert.Equal("redis", (await submit.Json()).Str("store"));
        var approve = await app.Account("alice").Approve(before);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, approve.StatusCode);

        // It comes back on the same port with its append-only log: nothing was lost, nothing half-done.
        await using var back = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = redisData, Port = port },
            NullLogger.Instance, CancellationToken.None);
        HttpResponseMessage? healthy = null;
        for (var i = 0; i < 100 && healthy?.StatusCode != HttpStatusCode.OK; i++)
        {
            healthy = await app.CreateClient().GetAsync("/healthz"); // the multiplexer reconnects in the background
        }
        Assert.Equal(HttpStatusCode.OK, healthy!.StatusCode);
        Assert.Equal("pending", (await (await agent.GetAsync($"/api/v1/approvals/{before}")).Json()).Str("state"));
        // Every path reconnects by itself, not all in the same instant as /healthz: a reviewer who retries a 503 gets through.
        HttpResponseMessage? approved = null;
        for (var i = 0; i < 50 && approved?.StatusCode != HttpStatusCode.OK; i++)
        {
            if (i > 0)
            {
                await Task.Delay(200);
            }
            approved = await app.Account("alice").Approve(before);
            Assert.True(approved.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{approved.StatusCode}");
        }
        Assert.Equal(HttpStatusCode.OK, approved!.StatusCode);
        Assert.Equal(1, await app.AuditCountAsync(before, "approved"));
        Assert.Equal(1, await app.AuditCountAsync(null, "submitted")); // the refused submit left no row
    }

    [Fact]
    public async Task The_embedded_server_killed_with_kill_9_is_started_again_by_the_app_and_nothing_is_lost()
    {
        // Zero set-up: the app runs its own Garnet. Nobody else will start it again.
        await using var app = await TestApp.StartAsync(redis: "");
        var agent = app.Agent("acme");
        var id = (await agent.SubmitPayment()).Str("approvalId");
        var redis = app.Services.GetRequiredService<RedisConnection>();
        var killed = redis.EmbeddedProcessId!.Value;

        System.Diagnostics.Process.GetProcessById(killed).Kill(); // SIGKILL

        // 503 while it is away, then the decision goes through without anyone restarting anything.
        HttpResponseMessage? approved = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (approved?.StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            if (approved is not null)
            {
                await Task.Delay(200);
            }
            approved = await app.Account("alice").Approve(id);
            Assert.True(approved.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{approved.StatusCode}");
        }
        Assert.Equal(HttpStatusCode.OK, approved!.StatusCode);
        Assert.NotEqual(killed, redis.EmbeddedProcessId);
        Assert.Equal(1, await app.AuditCountAsync(id, "submitted"));
        Assert.Equal(1, await app.AuditCountAsync(id, "approved"));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task Audit_store_outage_answers_503_and_no_transition_happens_without_its_row()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var pending = (await agent.SubmitPayment(1)).Str("approvalId");
        var alice = app.Account("alice");
        await alice.GetAsync("/api/v1/tenants"); // warm the token cache: authentication itself reads SQLite
        await agent.GetAsync("/api/v1/approvals");
        var db = Path.Combine(app.DataPath, "reviewerportal.db");
        var aside = db + ".aside";

        // The database file becomes unreadable (moved away, a folder in its place).
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Move(db, aside);
        foreach (var sidecar in new[] { "-wal", "-shm" })
        {
            if (File.Exists(db + sidecar)) { File.Move(db + sidecar, aside + sidecar); }
        }
        Directory.CreateDirectory(db);
        try
        {
            var health = await app.CreateClient().GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Equal("down", (await health.Json()).Str("sqlite"));

            var submit = await agent.Submit(new { topic = "finance.payment.execute", env = "production", payload = new { n = 2 } });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
            Assert.Equal("sqlite", (await submit.Json()).Str("store"));
            var approve = await alice.Approve(pending);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, approve.StatusCode);
            // Fail closed: the approval did not move without its audit row, and nothing new was parked.
            var list = await (await agent.GetAsync("/api/v1/approvals?state=pending")).Json();
            Assert.Equal([pending], list.GetProperty("items").EnumerateArray().Select(i => i.Str("id")));
        }
        finally
        {
            Directory.Delete(db);
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Move(aside, db);
            foreach (var sidecar in new[] { "-wal", "-shm" })
            {
                if (File.Exists(aside + sidecar)) { File.Move(aside + sidecar, db + sidecar); }
            }
        }

        // Back by itself: the same calls now succeed.
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.Approve(pending)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await agent.Submit(new { topic = "finance.payment.execute", env = "production", payload = new { n = 3 } })).StatusCode);
    }

    [Fact]
    public async Task Busy_lock_past_the_wait_budget_answers_423()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Redis:LockWaitBudget"] = "00:00:00.200" });
        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        await redis.StringSetAsync(RedisKeys.Lock("acme", id), "someone-else", TimeSpan.FromSeconds(30));

        // Re-evaluation works outside Redis (the policy engine) and keeps the approval's lock.
        var response = await app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/reevaluate", new { reason = "check" });

        Assert.Equal((HttpStatusCode)423, response.StatusCode);
        Assert.Equal("lock_busy", (await response.Json()).Str("code"));
        await redis.KeyDeleteAsync(RedisKeys.Lock("acme", id));
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/reevaluate", new { reason = "check" })).StatusCode);
    }

    [Fact]
    public async Task A_decision_takes_no_lock_a_stalled_holder_cannot_block_it_and_its_fence_still_holds()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Redis:LockWaitBudget"] = "00:00:00.200" });
        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        // A step that took the lock and stalled (a paused process, a lapsing lease): the decision is one fenced script.
        await redis.StringSetAsync(RedisKeys.Lock("acme", id), "someone-else", TimeSpan.FromSeconds(30));

        var approved = await app.Account("alice").Approve(id);
        var again = await app.Account("bob").Approve(id);

        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        Assert.Equal("approved", (await approved.Json()).Str("result"));
        Assert.Equal("already_approved", (await again.Json()).Str("result"));
        Assert.Equal("someone-else", (string?)await redis.StringGetAsync(RedisKeys.Lock("acme", id)));
        Assert.Equal(1, await app.AuditCountAsync(id, "approved"));
    }

    [Fact]
    public async Task Transition_whose_audit_commit_was_lost_gets_its_row_from_the_outbox()
    {
        // A long grace keeps the app's own background drain off this entry while the test drains it.
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Approvals:AuditOutboxGrace"] = "01:00:00" });
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var entry = audit.NewEntry("acme", "user:alice", "approved");
        entry.ApprovalId = "apr_LOSTCOMMIT";
        entry.At = entry.At.AddMinutes(-5);
        // What the Redis script left behind when the process died before the SQLite commit.
        await redis.ListLeftPushAsync(RedisKeys.AuditOutbox("acme"), AuditLog.Serialize(entry));

        var written = await audit.DrainOutboxAsync("acme", TimeSpan.FromSeconds(30), CancellationToken.None);
        var again = await audit.DrainOutboxAsync("acme", TimeSpan.FromSeconds(30), CancellationToken.None);

        Assert.Equal(1, written);
        Assert.Equal(0, again);
        Assert.Equal(0, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        Assert.Equal(1, await db.AuditEntries.CountAsync(e => e.EntryId == entry.EntryId));
        Assert.True((await audit.VerifyAsync("acme", CancellationToken.None)).Intact);
    }
}
