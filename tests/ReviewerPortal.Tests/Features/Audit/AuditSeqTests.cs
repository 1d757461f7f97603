using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>An approval transition's entry carries the seq it wrote; two entries claiming one seq mean a double transition.</summary>
public sealed class AuditSeqTests
{
    [Fact]
    public async Task Second_entry_claiming_an_approvals_seq_is_refused_alone()
    {
        var gate = new FailingCommits();
        await using var app = await TestApp.StartAsync(services: s => s.AddSingleton<IInterceptor>(gate));
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        await audit.AppendAsync(Entry(audit, "apr_SEQCLAIM", 1), CancellationToken.None);

        // Line up one batch: the double claim beside unrelated entries (another seq, another approval, no seq at all, twice).
        var held = gate.Hold();
        var first = audit.AppendAsync(audit.NewEntry("acme", "system:test", "note"), CancellationToken.None);
        await held;
        var twice = audit.AppendAsync(Entry(audit, "apr_SEQCLAIM", 1), CancellationToken.None);
        Task[] unrelated =
        [
            audit.AppendAsync(Entry(audit, "apr_SEQCLAIM", 2), CancellationToken.None),
            audit.AppendAsync(Entry(audit, "apr_SEQOTHER", 1), CancellationToken.None),
            audit.AppendAsync(Entry(audit, "apr_SEQCLAIM", null), CancellationToken.None),
            audit.AppendAsync(Entry(audit, "apr_SEQCLAIM", null), CancellationToken.None),
        ];
        Assert.True(await Task.Run(() => SpinWait.SpinUntil(() => audit.Queued >= 5, TimeSpan.FromSeconds(20))), "the batch did not line up");
        gate.Release();
        await first;

        await Assert.ThrowsAsync<AuditConflictException>(() => twice);
        await Task.WhenAll(unrelated);
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        Assert.Equal(1, await db.AuditEntries.CountAsync(e => e.ApprovalId == "apr_SEQCLAIM" && e.ApprovalSeq == 1));
        Assert.Equal(1, await db.AuditEntries.CountAsync(e => e.ApprovalId == "apr_SEQCLAIM" && e.ApprovalSeq == 2));
        Assert.Equal(1, await db.AuditEntries.CountAsync(e => e.ApprovalId == "apr_SEQOTHER" && e.ApprovalSeq == 1));
        Assert.Equal(2, await db.AuditEntries.CountAsync(e => e.ApprovalId == "apr_SEQCLAIM" && e.ApprovalSeq == null));
        Assert.Equal(0, await redis.ListLengthAsync(RedisKeys.AuditOutbox("acme"))); // the refused step never ran
        Assert.True((await audit.VerifyAsync("acme", CancellationToken.None)).Intact);
    }

    [Fact]
    public async Task Seq_is_stored_hashed_listed_exported_and_carried_through_the_outbox()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Approvals:AuditOutboxGrace"] = "01:00:00" });
        var audit = app.Services.GetRequiredService<AuditLog>();
        var redis = app.Services.GetRequiredService<RedisConnection>().Database;
        await audit.AppendAsync(Entry(audit, "apr_SEQLISTED", 4), CancellationToken.None);
        var lost = Entry(audit, "apr_SEQLISTED", 5);
        lost.At = lost.At.AddMinutes(-5);
        await redis.ListLeftPushAsync(RedisKeys.AuditOutbox("acme"), AuditLog.Serialize(lost));
        Assert.Equal(1, await audit.DrainOutboxAsync("acme", TimeSpan.FromSeconds(30), CancellationToken.None));

        var page = await (await app.Account("alice").GetAsync("/api/v1/audit?tenant=acme&approvalId=apr_SEQLISTED")).Json();
        Assert.Equal([4L, 5L], page.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("approvalSeq").GetInt64()));
        Assert.True((await audit.VerifyAsync("acme", CancellationToken.None)).Intact);
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var rows = await db.AuditEntries.Where(e => e.ApprovalId == "apr_SEQLISTED").OrderBy(e => e.Sequence).ToListAsync();
        var csv = AuditCsv.Write(rows).Split('\n');
        Assert.Contains("approvalSeq", csv[0].Split(','));
        Assert.Equal("5", csv[2].Split(',')[Array.IndexOf(csv[0].Split(','), "approvalSeq")]);
    }

    [Fact]
    public void Seq_joins_the_hash_only_when_it_is_set()
    {
        var entry = new AuditEntry
        {
            EntryId = "0190d1a2b3c4d5e6f708192a3b4c5d6e", At = new DateTimeOffset(2026, 11, 22, 14, 12, 31, TimeSpan.Zero),
            Tenant = "acme", ApprovalId = "apr_HASH", Actor = "user:alice", Action = "approved", FromState = "pending", ToState = "approved",
            PreviousHash = new string('a', 64),
        };
        // The formula of rows written before the seq existed: their chains still verify.
        var legacy = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u001f',
            entry.PreviousHash, entry.EntryId, entry.At.UtcTicks, entry.Tenant, entry.ApprovalId, entry.JobId, entry.Actor, entry.Action,
            entry.FromState, entry.ToState, entry.Reason, entry.PolicySnapshot, entry.JobHash, entry.Details))));
        Assert.Equal(legacy, AuditLog.ComputeHash(entry));

        entry.ApprovalSeq = 3;
        var three = AuditLog.ComputeHash(entry);
        entry.ApprovalSeq = 4;
        Assert.NotEqual(legacy, three);
        Assert.NotEqual(three, AuditLog.ComputeHash(entry));
    }

    private static AuditEntry Entry(AuditLog audit, string approvalId, long? seq)
    {
        var entry = audit.NewEntry("acme", "user:alice", seq is null ? "approve_refused" : "approved");
        entry.ApprovalId = approvalId;
        entry.ApprovalSeq = seq;
        entry.FromState = "pending";
        entry.ToState = seq is null ? "pending" : "approved";
        return entry;
    }
}
