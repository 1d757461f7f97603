using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// Issue 16, edit before approve: a reviewer fixes an argument and approves the edited job in one fenced step. The edit
/// is a new version (new job hash, lineage, field diff in the audit), the policy judges the edited payload, and the
/// agent's wait answers approved with <c>edited: true</c> and the payload to run.
/// </summary>
public sealed class EditAndApproveTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static Task<HttpResponseMessage> EditApprove(HttpClient reviewer, string id, object payload, string? jobHash = null, string? reason = "fixed the amount") =>
        reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/edit-and-approve", new { payload, jobHash, reason });

    private async Task<List<JsonElement>> AuditAsync(string id)
    {
        var page = await (await _app.Account("ada").GetAsync($"/api/v1/audit?approvalId={id}&limit=50")).Json();
        return [.. page.GetProperty("items").EnumerateArray()];
    }

    [Fact]
    public async Task Edit_and_approve_makes_a_new_version_and_the_agent_runs_the_edited_payload()
    {
        var agent = _app.Agent("acme");
        var submitted = await agent.SubmitPayment(420);
        var id = submitted.Str("approvalId");
        var waiting = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");

        var response = await EditApprove(_app.Account("alice"), id, new { invoice = "INV-420", amount = 400 }, submitted.Str("jobHash"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("approved", body.Str("result"));
        var approval = body.GetProperty("approval");
        Assert.Equal("approved", approval.Str("state"));
        Assert.True(approval.GetProperty("edited").GetBoolean());
        Assert.Equal("alice", approval.Str("editedBy"));
        Assert.Equal(2, approval.GetProperty("version").GetInt32());
        Assert.NotEqual(submitted.Str("jobHash"), approval.Str("jobHash"));
        Assert.NotEqual(submitted.Str("jobId"), approval.Str("jobId"));
        var lineage = Assert.Single(approval.GetProperty("lineage").EnumerateArray());
        Assert.Equal(submitted.Str("jobHash"), lineage.Str("jobHash"));
        Assert.Equal(420, lineage.GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.True(body.TryGetProperty("receipt", out var receipt) && receipt.ValueKind == JsonValueKind.Object);

        // The agent is told at once: approved, edited, and what it must run.
        var seen = await (await waiting).Json();
        Assert.Equal("approved", seen.Str("state"));
        Assert.True(seen.GetProperty("edited").GetBoolean());
        Assert.Equal(400, seen.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.Equal(approval.Str("jobHash"), seen.Str("jobHash"));

        // One decision, audited with the field diff and the edit.
        Assert.Equal(1, await _app.AuditCountAsync(id, "approved"));
        var decided = (await AuditAsync(id)).Single(e => e.Str("action") == "approved");
        var details = decided.Str("details");
        Assert.Contains("edited: true", details);
        Assert.Contains("via: api", details);
        Assert.Contains("amount: 420 → 400", details);
        Assert.Equal(approval.Str("jobHash"), decided.Str("jobHash"));
    }

    [Fact]
    public async Task An_edit_the_policy_denies_is_403_and_nothing_changes()
    {
        var publish = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
            version: v1
            default: require_human
            rules:
              - id: no-huge-payments
                when: { topic: finance.payment.execute, payload.amount: "99999" }
                decision: deny
              - id: payments
                when: { topic: finance.payment.execute }
                decision: require_human
            """, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, publish.StatusCode);
        var submitted = await _app.Agent("acme").SubmitPayment(100);
        var id = submitted.Str("approvalId");

        var response = await EditApprove(_app.Account("alice"), id, new { invoice = "INV-100", amount = 99999 });

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        var problem = await response.Json();
        Assert.Equal("policy_denied", problem.Str("code"));
        Assert.Contains("no-huge-payments", problem.Str("detail"));
        var after = await Workflow.GetApprovalAsync(_app, id);
        Assert.Equal("pending", after.Str("state"));
        Assert.Equal(1, after.GetProperty("version").GetInt32());
        Assert.Equal(submitted.Str("jobHash"), after.Str("jobHash"));
        Assert.Equal(100, after.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.False(after.GetProperty("edited").GetBoolean());
        Assert.Equal(0, await _app.AuditCountAsync(id, "approved"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "approve_refused"));
    }

    [Fact]
    public async Task Two_reviewers_editing_at_once_make_one_decision()
    {
        var submitted = await _app.Agent("acme").SubmitPayment(100);
        var id = submitted.Str("approvalId");

        var answers = await Task.WhenAll(
            EditApprove(_app.Account("alice"), id, new { invoice = "INV-100", amount = 90 }, submitted.Str("jobHash")),
            EditApprove(_app.Account("bob"), id, new { invoice = "INV-100", amount = 80 }, submitted.Str("jobHash")));

        var won = Assert.Single(answers, a => a.StatusCode == HttpStatusCode.OK);
        var lost = Assert.Single(answers, a => a.StatusCode != HttpStatusCode.OK);
        Assert.Contains(lost.StatusCode, new[] { HttpStatusCode.Conflict, HttpStatusCode.Locked });
        var winner = (await won.Json()).GetProperty("approval");
        var final = await Workflow.GetApprovalAsync(_app, id);
        Assert.Equal("approved", final.Str("state"));
        Assert.Equal(2, final.GetProperty("version").GetInt32());
        Assert.Equal(winner.Str("jobHash"), final.Str("jobHash"));
        Assert.Equal(winner.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32(),
            final.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.Equal(1, await _app.AuditCountAsync(id, "approved"));
    }

    [Fact]
    public async Task The_requester_may_not_edit_and_approve_their_own_request()
    {
        var response = await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-9", amount = 9 }, requestedBy = "alice",
        });
        var id = (await response.Json()).Str("approvalId");

        var own = await EditApprove(_app.Account("alice"), id, new { invoice = "INV-9", amount = 1 });

        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        Assert.Equal("requester_may_not_approve", (await own.Json()).Str("code"));
        var onCall = await EditApprove(_app.Account("oscar"), id, new { invoice = "INV-9", amount = 1 });
        Assert.Equal("not_an_approver", (await onCall.Json()).Str("code"));
        Assert.Equal(2, await _app.AuditCountAsync(id, "approve_refused"));
        var after = await Workflow.GetApprovalAsync(_app, id);
        Assert.Equal(1, after.GetProperty("version").GetInt32());
        Assert.Equal(9, after.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
    }

    [Fact]
    public async Task Under_quorum_the_edited_version_is_counted_afresh_with_the_editors_vote()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = (await _app.Agent("acme").SubmitPayment(100)).Str("approvalId");
        Assert.Equal("vote_recorded", (await (await _app.Account("alice").Approve(id)).Json()).Str("result"));

        var edited = await (await EditApprove(_app.Account("bob"), id, new { invoice = "INV-100", amount = 70 })).Json();

        Assert.Equal("vote_recorded", edited.Str("result"));
        var v2 = edited.GetProperty("approval");
        Assert.Equal("pending", v2.Str("state"));
        Assert.Equal(2, v2.GetProperty("version").GetInt32());
        var vote = Assert.Single(v2.GetProperty("votes").EnumerateArray());
        Assert.Equal("bob", vote.Str("by"));
        // Alice's vote was on version 1: it does not count for the edited job, so her approval now is needed again.
        Assert.Equal("alice", Assert.Single(Assert.Single(v2.GetProperty("lineage").EnumerateArray()).GetProperty("votes").EnumerateArray()).Str("by"));
        var again = await (await _app.Account("bob").Approve(id)).Json();
        Assert.Equal("already_approved", again.Str("result"));
        var final = await (await _app.Account("alice").Approve(id)).Json();
        Assert.Equal("approved", final.Str("result"));
        Assert.Equal(70, final.GetProperty("approval").GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.True(final.GetProperty("approval").GetProperty("edited").GetBoolean());
    }

    [Fact]
    public async Task A_masked_field_sent_back_masked_keeps_its_original_value()
    {
        await Workflow.SetAsync(_app, new { redactFields = new[] { "apiKey" } });
        const string Secret = "vendor-key-Kq82LmW3";
        var agent = _app.Agent("acme");
        var submitted = await (await agent.Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-5", amount = 5, apiKey = Secret },
        })).Json();
        var id = submitted.Str("approvalId");
        // The reviewer only ever saw the marker and sends it back with another amount.
        var masked = (await (await _app.Account("alice").GetAsync($"/api/v1/approvals/{id}")).Json()).GetProperty("job").GetProperty("payload");
        Assert.Equal("[redacted:field]", masked.Str("apiKey"));

        var response = await EditApprove(_app.Account("alice"), id, new { invoice = "INV-5", amount = 6, apiKey = "[redacted:field]" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var run = (await (await agent.GetAsync($"/api/v1/approvals/{id}")).Json()).GetProperty("job").GetProperty("payload");
        Assert.Equal(Secret, run.Str("apiKey"));
        Assert.Equal(6, run.GetProperty("amount").GetInt32());
        // The answer to the reviewer and the audit still mask it.
        Assert.DoesNotContain(Secret, await response.Content.ReadAsStringAsync());
        Assert.DoesNotContain(Secret, string.Join("\n", (await AuditAsync(id)).Select(e => e.GetRawText())));
    }

    [Fact]
    public async Task The_marker_where_no_value_was_masked_is_400_naming_the_field()
    {
        await Workflow.SetAsync(_app, new { redactFields = new[] { "apiKey" } });
        var id = (await _app.Agent("acme").SubmitPayment(5)).Str("approvalId");

        var response = await EditApprove(_app.Account("alice"), id, new { invoice = "INV-5", amount = 6, apiKey = "[redacted:field]" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("payload.apiKey", out _));
        Assert.Equal(1, (await Workflow.GetApprovalAsync(_app, id)).GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task Another_tenant_gets_404_and_a_payload_that_is_no_object_is_400()
    {
        var id = (await _app.Agent("acme").SubmitPayment(5)).Str("approvalId");

        Assert.Equal(HttpStatusCode.NotFound, (await EditApprove(_app.Account("gina"), id, new { amount = 1 })).StatusCode);
        var bad = await _app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/edit-and-approve", new { payload = 7 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.True((await bad.Json()).GetProperty("errors").TryGetProperty("payload", out _));
        var stale = await EditApprove(_app.Account("alice"), id, new { amount = 1 }, jobHash: new string('0', 64));
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal("job_changed", (await stale.Json()).Str("code"));
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
    }

    [Fact]
    public async Task The_dispatch_publishes_the_edited_payload_and_hash()
    {
        Assert.True((await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { dispatch = new { kind = "redis", key = "workers" } })).IsSuccessStatusCode);
        var id = (await _app.Agent("acme").SubmitPayment(420)).Str("approvalId");
        var approved = (await (await EditApprove(_app.Account("alice"), id, new { invoice = "INV-420", amount = 400 })).Json()).GetProperty("approval");

        var dispatcher = _app.Services.GetRequiredService<ReviewerPortal.Features.Dispatch.Dispatcher>();
        await dispatcher.RunDueAsync(CancellationToken.None);

        var items = await _app.Services.GetRequiredService<ReviewerPortal.Infrastructure.Redis.RedisConnection>().Database
            .ListRangeAsync(ReviewerPortal.Infrastructure.Redis.RedisKeys.Sink("acme", "workers"));
        var message = JsonDocument.Parse((string)Assert.Single(items)!).RootElement;
        Assert.Equal(400, message.GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.Equal(approved.Str("jobHash"), message.Str("jobHash"));
        Assert.Equal(approved.Str("jobId"), message.Str("jobId"));
    }
}
