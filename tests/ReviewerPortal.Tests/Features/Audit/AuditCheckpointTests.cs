using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>Signed checkpoints of a tenant's audit head: when they are written, where, and what receipts say of the head.</summary>
public sealed class AuditCheckpointTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    [Fact]
    public async Task Checkpoint_is_written_at_the_first_entry_then_after_every_N_entries()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Audit:CheckpointEvery"] = "5",
            ["Audit:CheckpointInterval"] = "1.00:00:00",
        });
        const string tenant = "cpcount";
        var first = (await AppendAsync(app, tenant, 1))[0];
        Assert.Equal(first, await WaitForCheckpointAsync(app, tenant, first));

        var next = await AppendAsync(app, tenant, 4);
        var fifth = (await AppendAsync(app, tenant, 1))[0];

        Assert.Equal(fifth, await WaitForCheckpointAsync(app, tenant, fifth));
        // The log outside the database holds exactly those two, signed; none for the four in between.
        var log = await LogAsync(app, tenant);
        Assert.Equal([first, fifth], log.Select(c => c.Sequence));
        Assert.DoesNotContain(log, c => next.Contains(c.Sequence));
        var verify = await AuditTamperTests.VerifyAsync(app, tenant);
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(2, verify.GetProperty("checkpointsChecked").GetInt32());
    }

    [Fact]
    public async Task Checkpoint_is_written_once_the_interval_has_passed_since_the_last()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero));
        await using var app = await TestApp.StartAsync(clock: clock, settings: new Dictionary<string, string?>
        {
            ["Audit:CheckpointEvery"] = "1000",
            ["Audit:CheckpointInterval"] = "00:05:00",
        });
        const string tenant = "cptime";
        var first = (await AppendAsync(app, tenant, 1))[0];
        Assert.Equal(first, await WaitForCheckpointAsync(app, tenant, first));
        var later = await AppendAsync(app, tenant, 3);

        clock.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(later[^1], await WaitForCheckpointAsync(app, tenant, later[^1]));
        var log = await LogAsync(app, tenant);
        Assert.Equal([first, later[^1]], log.Select(c => c.Sequence));
        Assert.Equal(clock.GetUtcNow(), log[^1].At);
    }

    [Fact]
    public async Task Two_instances_due_at_once_write_one_checkpoint()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero));
        var data = TestServers.NewTempDirectory("cp-two");
        var prefix = $"cp{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?> { ["Audit:CheckpointEvery"] = "1000", ["Audit:CheckpointInterval"] = "00:05:00" };
        await using var a = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix, settings: settings);
        await using var b = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix, settings: settings);
        await WaitForCheckpointAsync(a, "acme", 1); // the seeded history's first checkpoint
        var head = (await AppendAsync(a, "acme", 3))[^1];

        clock.Advance(TimeSpan.FromMinutes(5));
        // Both instances find acme due at the same moment (their own ticks run beside these passes too).
        await Task.WhenAll(Enumerable.Range(0, 3).SelectMany(_ => new[] { a, b })
            .Select(app => Task.Run(() => app.Services.GetRequiredService<AuditCheckpoints>().CheckpointDueByTimeAsync(CancellationToken.None))));

        Assert.Equal(head, await WaitForCheckpointAsync(b, "acme", head));
        var log = await LogAsync(a, "acme");
        Assert.Single(log, c => c.Sequence == head);
        Assert.Equal(log.Count, log.Select(c => c.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task Two_instances_pushing_the_same_pending_checkpoint_append_it_once()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero));
        var data = TestServers.NewTempDirectory("cp-push");
        var prefix = $"cp{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?> { ["Audit:CheckpointEvery"] = "1000", ["Audit:CheckpointInterval"] = "00:05:00" };
        await using var a = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix, settings: settings);
        await using var b = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix, settings: settings);
        await WaitForCheckpointAsync(a, "acme", 1);
        var head = (await AppendAsync(a, "acme", 3))[^1];
        clock.Advance(TimeSpan.FromMinutes(5));
        await a.Services.GetRequiredService<AuditCheckpoints>().CheckpointDueByTimeAsync(CancellationToken.None);

        // The checkpoint waits in Redis for its push; both instances push at once, again and again.
        await Task.WhenAll(Enumerable.Range(0, 8).SelectMany(_ => new[] { a, b })
            .Select(app => Task.Run(() => app.Services.GetRequiredService<AuditCheckpoints>().PushPendingAsync(CancellationToken.None))));

        Assert.Equal(head, await WaitForCheckpointAsync(b, "acme", head));
        var log = await LogAsync(a, "acme");
        Assert.Single(log, c => c.Sequence == head);
        Assert.Equal(log.Count, log.Select(c => c.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task Receipt_carries_the_audit_head_it_was_issued_at()
    {
        await using var app = await TestApp.StartAsync();
        var id = (await app.Agent("acme").SubmitPayment(11)).Str("approvalId");
        var decided = await (await app.Account("alice").Approve(id)).Json();

        var fromDecision = Claims(decided.GetProperty("receipt"));
        var fetched = await app.Agent("acme").GetAsync($"/api/v1/approvals/{id}/receipt");
        Assert.Equal(HttpStatusCode.OK, fetched.StatusCode);
        var fromGet = Claims(await fetched.Json());

        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var approved = await db.AuditEntries.SingleAsync(e => e.ApprovalId == id && e.Action == "approved");
        foreach (var claims in new[] { fromDecision, fromGet })
        {
            var sequence = claims.GetProperty("auditSequence").GetInt64();
            Assert.True(sequence >= approved.Sequence, $"head {sequence} before the decision's entry {approved.Sequence}");
            var row = await db.AuditEntries.SingleAsync(e => e.Sequence == sequence);
            Assert.Equal("acme", row.Tenant);
            Assert.Equal(row.Hash, claims.GetProperty("auditHash").GetString());
        }
    }

    [Fact]
    public async Task A_decision_receipt_names_the_head_of_the_commit_that_wrote_the_decision_without_reading_the_chain()
    {
        var log = new CommandLog();
        await using var app = await TestApp.StartAsync(services: s => s.AddSingleton<IInterceptor>(log));
        var id = (await app.Agent("acme").SubmitPayment(12)).Str("approvalId");
        await app.Account("alice").GetAsync("/api/v1/tenants"); // warm the sign-in caches
        log.Clear();

        var decided = await (await app.Account("alice").Approve(id)).Json();

        // The audit writer knows the head it just committed: the receipt does not ask the database for it again.
        Assert.DoesNotContain(log.Texts, t => t.Contains("AuditEntries", StringComparison.Ordinal) && t.Contains("ORDER BY", StringComparison.Ordinal));
        var claims = Claims(decided.GetProperty("receipt"));
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var approved = await db.AuditEntries.SingleAsync(e => e.ApprovalId == id && e.Action == "approved");
        var sequence = claims.GetProperty("auditSequence").GetInt64();
        Assert.True(sequence >= approved.Sequence, $"head {sequence} before the decision's entry {approved.Sequence}");
        Assert.Equal((await db.AuditEntries.SingleAsync(e => e.Sequence == sequence)).Hash, claims.GetProperty("auditHash").GetString());
    }

    [Fact]
    public async Task A_receipt_issued_while_audit_commits_fail_names_only_a_committed_row()
    {
        var failing = new FailingCommits();
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?> { ["Approvals:AuditOutboxGrace"] = "01:00:00" },
            services: s => s.AddSingleton<IInterceptor>(failing));
        var first = (await app.Agent("acme").SubmitPayment(13)).Str("approvalId");
        await (await app.Account("alice").Approve(first)).Json(); // the cached head is now this committed decision
        var id = (await app.Agent("acme").SubmitPayment(14)).Str("approvalId");

        failing.FailAll();
        var response = await app.Account("alice").Approve(id);
        failing.Heal();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var claims = Claims((await response.Json()).GetProperty("receipt"));
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        // The decision's row waits in the outbox (its commit failed): the receipt names a row that is in the table, as it is there.
        Assert.False(await db.AuditEntries.AnyAsync(e => e.ApprovalId == id && e.Action == "approved"));
        var sequence = claims.GetProperty("auditSequence").GetInt64();
        var row = await db.AuditEntries.SingleAsync(e => e.Sequence == sequence);
        Assert.Equal(row.Hash, claims.GetProperty("auditHash").GetString());
        Assert.Equal(await db.AuditEntries.Where(e => e.Tenant == "acme").MaxAsync(e => e.Sequence), sequence);
    }

    private static JsonElement Claims(JsonElement receipt) => JsonDocument.Parse(receipt.GetProperty("payload").GetString()!).RootElement.Clone();

    private static async Task<long[]> AppendAsync(TestApp app, string tenant, int count)
    {
        var audit = app.Services.GetRequiredService<AuditLog>();
        var sequences = new long[count];
        for (var i = 0; i < count; i++)
        {
            var entry = audit.NewEntry(tenant, "user:alice", "note");
            await audit.AppendAsync(entry, CancellationToken.None);
            sequences[i] = entry.Sequence;
        }
        return sequences;
    }

    /// <summary>
    /// Waits (at most 30 s) for a checkpoint at or past <paramref name="sequence"/> in the log file (appended after Redis
    /// took it) whose signature verifies; answers its sequence.
    /// </summary>
    private static async Task<long> WaitForCheckpointAsync(TestApp app, string tenant, long sequence)
    {
        var checkpoints = app.Services.GetRequiredService<AuditCheckpoints>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            List<AuditCheckpointClaims> logged;
            try
            {
                logged = File.Exists(LogFile(app, tenant)) ? await LogAsync(app, tenant) : [];
            }
            catch (JsonException)
            {
                logged = []; // a line being appended
            }
            var verified = await checkpoints.ReadVerifiedAsync(tenant, CancellationToken.None);
            if (logged.Count > 0 && logged.Max(c => c.Sequence) >= sequence && verified[^1].Sequence >= sequence)
            {
                return verified[^1].Sequence;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no checkpoint of {tenant} at {sequence}");
            await Task.Delay(50);
        }
    }

    private static string LogFile(TestApp app, string tenant) => Path.Combine(app.DataPath, "audit-checkpoints", tenant + ".jsonl");

    /// <summary>The tenant's checkpoint log file, each line's signed claims.</summary>
    private static async Task<List<AuditCheckpointClaims>> LogAsync(TestApp app, string tenant)
    {
        var lines = await File.ReadAllLinesAsync(LogFile(app, tenant));
        return [.. lines.Where(l => l.Length > 0).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("payload").GetString()!)
            .Select(p => JsonSerializer.Deserialize<AuditCheckpointClaims>(p, Web)!)];
    }
}
