using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// An idempotency key lives exactly as long as what it points to (so a retry never makes a second approval of the
/// same job, and never dangles into 503s), and it is bound to the job: the same key with another payload is 409.
/// </summary>
public sealed class IdempotencyTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Storage:DecidedRetention"] = "00:10:00",
    });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private IDatabase Redis => _app.Services.GetRequiredService<RedisConnection>().Database;

    /// <summary>The key's remaining life is the record's (within a few seconds of clock between the two reads).</summary>
    private async Task AssertKeyLivesAsLongAsTheRecordAsync(string key, string approvalId, string when)
    {
        var keyTtl = await Redis.KeyTimeToLiveAsync(RedisKeys.Idempotency("acme", key));
        var recordTtl = await Redis.KeyTimeToLiveAsync(RedisKeys.Approval("acme", approvalId));
        Assert.NotNull(keyTtl);
        Assert.NotNull(recordTtl);
        Assert.True(Math.Abs((keyTtl.Value - recordTtl.Value).TotalSeconds) < 5,
            $"{when}: the key lives {keyTtl} but the approval {recordTtl}");
    }

    [Fact]
    public async Task The_key_lives_as_long_as_its_approval_through_changes_resubmission_and_decision()
    {
        await Workflow.SetAsync(_app, new { approvalTtl = "20d" }); // 20 days, longer than the 7-day window
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100, idempotencyKey: "pay-100")).Str("approvalId");
        await AssertKeyLivesAsLongAsTheRecordAsync("pay-100", id, "after submit");

        var changes = await _app.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "add the PO" });
        Assert.Equal(HttpStatusCode.OK, changes.StatusCode);
        await AssertKeyLivesAsLongAsTheRecordAsync("pay-100", id, "after request changes");

        var resubmit = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, po = "PO-1" } });
        Assert.Equal(HttpStatusCode.OK, resubmit.StatusCode);
        await AssertKeyLivesAsLongAsTheRecordAsync("pay-100", id, "after resubmit");

        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(id)).StatusCode);
        await AssertKeyLivesAsLongAsTheRecordAsync("pay-100", id, "after the decision");

        // The original submit, retried late, is still the same approval (not a second one of the same job).
        var retry = await agent.SubmitPayment(100, idempotencyKey: "pay-100");
        Assert.Equal(id, retry.Str("approvalId"));
        Assert.True(retry.GetProperty("replayed").GetBoolean());
    }

    [Fact]
    public async Task The_same_key_with_another_payload_is_409_and_changes_nothing()
    {
        var agent = _app.Agent("acme");
        var first = (await agent.SubmitPayment(100, idempotencyKey: "pay-A")).Str("approvalId");

        var reused = await agent.Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-999", amount = 999 },
            idempotencyKey = "pay-A",
        });

        Assert.Equal(HttpStatusCode.Conflict, reused.StatusCode);
        var problem = await reused.Json();
        Assert.Equal("idempotency_key_reused", problem.Str("code"));
        Assert.Contains("idempotencyKey", problem.GetRawText());
        var pending = await (await agent.GetAsync("/api/v1/approvals?state=pending")).Json();
        Assert.Equal([first], pending.GetProperty("items").EnumerateArray().Select(i => i.Str("id")));
        Assert.Equal(1, await _app.AuditCountAsync(null, "submitted"));
    }

    [Fact]
    public async Task Concurrent_resubmits_with_one_key_all_get_the_first_answer()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK,
            (await _app.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "PO" })).StatusCode);

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, po = "PO-2" }, idempotencyKey = "fix-2" })));

        foreach (var response in responses)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            Assert.Equal(2, (await response.Json()).GetProperty("approval").GetProperty("version").GetInt32());
        }
        Assert.Equal(1, await _app.AuditCountAsync(id, "resubmitted"));
    }
}
