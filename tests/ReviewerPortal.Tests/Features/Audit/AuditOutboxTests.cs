using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>Failed audit commits: every entry reaches the table exactly once through the outbox, or its caller sees the failure.</summary>
public sealed class AuditOutboxTests
{
    // A long grace keeps the app's own background drain off the entries while a test drains them.
    private static readonly Dictionary<string, string?> LongGrace = new() { ["Approvals:AuditOutboxGrace"] = "01:00:00" };

    [Fact]
    public async Task Entries_written_while_commits_fail_reach_the_table_once_through_the_outbox()
    {
        var failing = new FailingCommits();
        await using var app = await TestApp.StartAsync(settings: LongGrace, services: s => s.AddSingleton<IInterceptor>(failing));
        var agent = app.Agent("acme");
        var alice = app.Account("alice");
        var oscar = app.Account("oscar");
        // Warm the token caches: authentication itself reads SQLite.
        await agent.GetAsync("/api/v1/approvals");
        await alice.GetAsync("/api/v1/tenants");
        await oscar.GetAsync("/api/v1/tenants");

        failing.FailAll();
        var denied = await agent.Submit(new { topic = "secrets.export", env = "production", payload = new { } });
        var refusedId = (await agent.SubmitPayment(1)).Str("approvalId");
        var approvedId = (await agent.SubmitPayment(2)).Str("approvalId");
        var refused = await oscar.Approve(refusedId);
        var approved = await alice.Approve(approvedId);
        failing.Heal();

        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        Assert.True(failing.Failed >= 5, $"only {failing.Failed} commits failed");

        await app.Services.GetRequiredService<AuditLog>().DrainOutboxAsync("acme", TimeSpan.Zero, CancellationToken.None);

        Assert.Equal(1, await app.AuditCountAsync(null, "job_denied"));
        Assert.Equal(1, await app.AuditCountAsync(refusedId, "submitted"));
        Assert.Equal(1, await app.AuditCountAsync(approvedId, "submitted"));
        Assert.Equal(1, await app.AuditCountAsync(refusedId, "approve_refused"));
        Assert.Equal(1, await app.AuditCountAsync(approvedId, "approved"));
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        Assert.Equal(0, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        var verify = await (await app.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
    }

    [Fact]
    public async Task Entry_already_in_the_table_and_still_in_the_outbox_fails_no_live_batch()
    {
        var gate = new FailingCommits();
        await using var app = await TestApp.StartAsync(settings: LongGrace, services: s => s.AddSingleton<IInterceptor>(gate));
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var agent = app.Agent("acme");
        await agent.GetAsync("/api/v1/approvals");
        var entry = audit.NewEntry("acme", "user:alice", "approved");
        entry.ApprovalId = "apr_ALREADYTHERE";
        await audit.AppendAsync(entry, CancellationToken.None);
        // Its row is committed, but its outbox copy is still there (the removal after the commit was lost).
        await redis.ListLeftPushAsync(RedisKeys.AuditOutbox("acme"), AuditLog.Serialize(entry));

        // Hold the writer on one commit so that what follows lines up behind it as one batch.
        var held = gate.Hold();
        var first = audit.AppendAsync(audit.NewEntry("acme", "system:test", "note"), CancellationToken.None);
        await held;
        var again = audit.AppendAsync(entry, CancellationToken.None); // the same entry in a live batch (a retry, a replay)
        var submits = Enumerable.Range(10, 5).Select(i => agent.Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = $"INV-{i}", amount = i },
        })).ToList();
        Assert.True(await Task.Run(() => SpinWait.SpinUntil(() => audit.Queued >= 6, TimeSpan.FromSeconds(20))), "the batch did not line up");
        gate.Release();
        await first;
        var responses = await Task.WhenAll(submits);

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.Accepted, r.StatusCode));
        await again; // no UNIQUE failure for the caller either
        var drained = await audit.DrainOutboxAsync("acme", TimeSpan.Zero, CancellationToken.None);
        Assert.Equal(0, drained);
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        Assert.Equal(1, await db.AuditEntries.CountAsync(e => e.EntryId == entry.EntryId));
        Assert.Equal(5, await app.AuditCountAsync(null, "submitted"));
        Assert.Equal(0, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        Assert.True((await audit.VerifyAsync("acme", CancellationToken.None)).Intact);
    }

    [Fact]
    public async Task Drain_removes_nothing_while_commits_fail()
    {
        var failing = new FailingCommits();
        await using var app = await TestApp.StartAsync(settings: LongGrace, services: s => s.AddSingleton<IInterceptor>(failing));
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var entry = audit.NewEntry("acme", "user:alice", "approved");
        entry.ApprovalId = "apr_DRAINFAILS";
        entry.At = entry.At.AddMinutes(-5);
        await redis.ListLeftPushAsync(RedisKeys.AuditOutbox("acme"), AuditLog.Serialize(entry));

        failing.FailAll();
        try
        {
            await audit.DrainOutboxAsync("acme", TimeSpan.FromSeconds(30), CancellationToken.None);
        }
        catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or DbUpdateException or InvalidOperationException)
        {
            // The pass fails; what matters is what it left behind.
        }

        Assert.True(failing.Failed > 0);
        Assert.Equal(1, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        Assert.Equal(0, await app.AuditCountAsync("apr_DRAINFAILS", "approved"));

        failing.Heal();
        Assert.Equal(1, await audit.DrainOutboxAsync("acme", TimeSpan.FromSeconds(30), CancellationToken.None));
        Assert.Equal(0, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        Assert.Equal(1, await app.AuditCountAsync("apr_DRAINFAILS", "approved"));
        Assert.True((await audit.VerifyAsync("acme", CancellationToken.None)).Intact);
    }
}
