using System.Net;
using System.Net.Http.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// A lock's lease can lapse while its holder waits (here: on its audit store). Every move is fenced on the approval's
/// seq, so the late holder changes nothing: it never approves a version nobody reviewed, nor removes the new version's timers.
/// </summary>
public sealed class FencingTests
{
    [Fact]
    public async Task A_decision_whose_lease_lapsed_while_another_instance_moved_the_approval_on_changes_nothing()
    {
        var redis = await TestServers.GarnetAsync();
        var prefix = $"f{Guid.NewGuid():N}:";
        var lease = new Dictionary<string, string?> { ["Redis:LockLease"] = "00:00:01" };
        // Two audit stores (A's is stalled below) but one Data Protection key ring, as a fleet shares it: what one instance
        // protects in Redis (the audit chain key, tenant secrets) the other reads.
        var keyRing = new DirectoryInfo(TestServers.NewTempDirectory("fencing-keys"));
        void SharedKeys(IServiceCollection services) =>
            Microsoft.AspNetCore.DataProtection.DataProtectionBuilderExtensions.PersistKeysToFileSystem(services.AddDataProtection(), keyRing);
        await using var a = await TestApp.StartAsync(redis: redis, keyPrefix: prefix, settings: lease, services: SharedKeys);
        await using var b = await TestApp.StartAsync(redis: redis, keyPrefix: prefix, settings: lease, services: SharedKeys);
        var id = (await a.Agent("acme").SubmitPayment(100)).Str("approvalId");
        var aliceOnA = a.Account("alice");
        await aliceOnA.GetAsync("/api/v1/tenants"); // warm the token cache before the audit store stalls

        // Instance A's audit store stalls (another writer holds its SQLite write lock).
        await using var stall = new SqliteConnection($"Data Source={Path.Combine(a.DataPath, "reviewerportal.db")}");
        await stall.OpenAsync();
        await using (var begin = stall.CreateCommand())
        {
            begin.CommandText = "BEGIN IMMEDIATE";
            await begin.ExecuteNonQueryAsync();
        }
        var lateApprove = aliceOnA.Approve(id); // takes the lock, reads version 1, then waits on its audit row
        await Task.Delay(TimeSpan.FromSeconds(2)); // its lease lapses

        // Meanwhile, on B: changes requested and a new version submitted, with its own deadline and timers.
        Assert.Equal(HttpStatusCode.OK,
            (await b.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "add the PO" })).StatusCode);
        var resubmit = await b.Agent("acme").PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100000, po = "PO-9" } });
        Assert.Equal(HttpStatusCode.OK, resubmit.StatusCode);

        await using (var rollback = stall.CreateCommand())
        {
            rollback.CommandText = "ROLLBACK";
            await rollback.ExecuteNonQueryAsync();
        }
        var late = await lateApprove;

        Assert.Equal(HttpStatusCode.Conflict, late.StatusCode);
        var approval = await Workflow.GetApprovalAsync(b, id);
        Assert.Equal("pending", approval.Str("state"));
        Assert.Equal(2, approval.GetProperty("version").GetInt32());
        Assert.Equal(0, await a.AuditCountAsync(id, "approved"));
        var timers = b.Services.GetRequiredService<RedisConnection>().Database;
        Assert.NotNull(await timers.SortedSetScoreAsync(RedisKeys.Timers("acme"), RedisKeys.ExpireTimer(id)));
    }
}
