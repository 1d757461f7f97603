using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>The reconciler compares each approval in Redis with its audit history and flags the ones that went back.</summary>
public sealed class AuditReconcilerTests
{
    [Fact]
    public async Task Approval_that_went_back_behind_its_audit_is_flagged_once()
    {
        await using var app = await TestApp.StartAsync();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        var lost = await ApprovedAsync(app);
        var intact = await ApprovedAsync(app);
        var ahead = await ApprovedAsync(app);

        // Redis loses an acknowledged write: the approved record is back to pending, one seq lower.
        var seq = (long)await redis.HashGetAsync(RedisKeys.Approval("acme", lost), "seq");
        await redis.HashSetAsync(RedisKeys.Approval("acme", lost), [new("state", "pending"), new("seq", seq - 1)]);
        // Redis ahead of the audit (a transition whose row still waits in the outbox) is no regression.
        await redis.HashSetAsync(RedisKeys.Approval("acme", ahead), [new("state", "dispatched"), new("seq", seq + 1)]);
        var reconciler = app.Services.GetRequiredService<AuditReconciler>();

        var first = await reconciler.RunOnceAsync(CancellationToken.None);
        var second = await reconciler.RunOnceAsync(CancellationToken.None);

        Assert.Equal(1, first);
        Assert.Equal(0, second);
        Assert.Equal(1, await app.AuditCountAsync(lost, "state_regressed"));
        Assert.Equal(0, await app.AuditCountAsync(intact, "state_regressed"));
        Assert.Equal(0, await app.AuditCountAsync(ahead, "state_regressed"));
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var flagged = await db.AuditEntries.SingleAsync(e => e.ApprovalId == lost && e.Action == "state_regressed");
        Assert.Equal("system:reconciler", flagged.Actor);
        Assert.Contains("pending", flagged.Reason);
        Assert.Contains("approved", flagged.Reason);
        Assert.Null(flagged.ApprovalSeq);
        Assert.True((await app.Services.GetRequiredService<AuditLog>().VerifyAsync("acme", CancellationToken.None)).Intact);
    }

    /// <summary>Submits and approves a payment; returns its id once its audit history holds the seq the approval wrote.</summary>
    private static async Task<string> ApprovedAsync(TestApp app)
    {
        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        if (!await db.AuditEntries.AnyAsync(e => e.ApprovalId == id && e.ApprovalSeq != null))
        {
            // Until approval transitions record their seq themselves (ApprovalService), write the entry they will write.
            var entry = audit.NewEntry("acme", "user:alice", "approved");
            entry.ApprovalId = id;
            entry.FromState = "pending";
            entry.ToState = "approved";
            entry.ApprovalSeq = (long)await redis.HashGetAsync(RedisKeys.Approval("acme", id), "seq");
            await audit.AppendAsync(entry, CancellationToken.None);
        }
        return id;
    }
}
