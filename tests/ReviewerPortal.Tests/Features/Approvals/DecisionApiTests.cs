using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Data;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

public sealed class DecisionApiTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Approve_answers_200_approved_and_records_decider_and_reason()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        var response = await _app.Account("alice").Approve(id, new { reason = "validated invoice" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("approved", body.Str("result"));
        Assert.Equal("approved", body.Str("state"));
        var approval = await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.Equal("approved", approval.Str("state"));
        Assert.Equal("alice", approval.Str("decidedBy"));
        Assert.Equal("validated invoice", approval.Str("reason"));
    }

    [Fact]
    public async Task Approve_twice_answers_already_approved_with_one_audit_entry()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var alice = _app.Account("alice");

        await alice.Approve(id);
        var again = await alice.PostAsync($"/api/v1/approvals/{id}/approve", null);

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("already_approved", (await again.Json()).Str("result"));
        Assert.Equal(1, await AuditCount(id, "approved"));
    }

    [Fact]
    public async Task Fifty_simultaneous_approves_make_one_transition_and_one_audit_row()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var clients = Enumerable.Range(0, 50).Select(i => _app.Account(i % 2 == 0 ? "alice" : "bob")).ToList();

        var responses = await Task.WhenAll(clients.Select(c => c.Approve(id)));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var results = await Task.WhenAll(responses.Select(async r => (await r.Json()).Str("result")));
        Assert.Equal(1, results.Count(r => r == "approved"));
        Assert.Equal(49, results.Count(r => r == "already_approved"));
        Assert.Equal(1, await AuditCount(id, "approved"));
    }

    [Fact]
    public async Task Reject_after_approve_is_409_naming_the_state()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        await _app.Account("alice").Approve(id);

        var response = await _app.Account("bob").Reject(id);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("approved", body.Str("code"));
        Assert.Equal("approved", body.Str("state"));
    }

    [Fact]
    public async Task Approve_with_a_different_job_hash_is_409_job_changed()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        var response = await _app.Account("alice").Approve(id, new { reason = "ok", jobHash = new string('a', 64) });

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("job_changed", (await response.Json()).Str("code"));
        var approval = await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.Equal("pending", approval.Str("state"));
        Assert.Equal(1, await AuditCount(id, "approve_refused"));
    }

    [Fact]
    public async Task Policy_change_after_submit_is_409_snapshot_changed_until_reevaluated()
    {
        var submitted = await _app.Agent("acme").SubmitPayment();
        var id = submitted.Str("approvalId");
        var alice = _app.Account("alice");

        var publish = await PublishPolicy("""
            version: v1
            rules:
              - id: require-approval-prod-finance
                when: { topic: finance.payment.execute, env: production }
                decision: require_human
              - id: salary-changes
                when: { topic: hr.salary.change }
                decision: require_human
            default: deny
            """);
        Assert.Equal(HttpStatusCode.OK, publish.StatusCode);

        var stale = await alice.Approve(id, new { jobHash = submitted.Str("jobHash"), policySnapshot = submitted.Str("policySnapshot") });
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal("snapshot_changed", (await stale.Json()).Str("code"));

        var reevaluated = await alice.PostAsJsonAsync($"/api/v1/approvals/{id}/reevaluate", new { reason = "policy updated" });
        Assert.Equal(HttpStatusCode.OK, reevaluated.StatusCode);
        var approval = (await reevaluated.Json()).GetProperty("approval");
        Assert.Equal("pending", approval.Str("state"));
        Assert.NotEqual(submitted.Str("policySnapshot"), approval.Str("policySnapshot"));

        var approved = await alice.Approve(id);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
    }

    [Fact]
    public async Task Reevaluation_under_a_policy_that_now_denies_rejects_the_approval()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        await PublishPolicy("""
            version: v1
            rules:
              - id: no-payments
                when: { topic: finance.payment.execute }
                decision: deny
            """);

        var response = await _app.Account("alice").PostAsync($"/api/v1/approvals/{id}/reevaluate", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var approval = (await response.Json()).GetProperty("approval");
        Assert.Equal("rejected", approval.Str("state"));
        Assert.Equal("policy", approval.Str("decidedBy"));
    }

    [Fact]
    public async Task Another_tenants_approval_is_404_on_every_endpoint()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var gina = _app.Account("gina");
        var globexAgent = _app.Agent("globex");

        Assert.Equal(HttpStatusCode.NotFound, (await gina.GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.GetAsync($"/api/v1/approvals/{id}/decision")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.Approve(id)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.Reject(id)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.PostAsync($"/api/v1/approvals/{id}/reevaluate", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.GetAsync($"/api/v1/audit?approvalId={id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await gina.GetAsync("/api/v1/approvals?tenant=acme")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await globexAgent.GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("alice").GetAsync("/api/v1/approvals/apr_00000000000000000000000000")).StatusCode);
        // And the acme approval is untouched.
        Assert.Equal("pending", (await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state"));
    }

    [Fact]
    public async Task On_call_reads_every_tenant_but_deciding_is_403()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var oscar = _app.Account("oscar");

        Assert.Equal(HttpStatusCode.OK, (await oscar.GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        var response = await oscar.Approve(id);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("not_an_approver", (await response.Json()).Str("code"));
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Account("ada").Approve(id)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Agent("acme").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task Long_poll_wakes_on_the_decision()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var agent = _app.Agent("acme");

        var waiting = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");
        await Task.Yield();
        Assert.False(waiting.IsCompleted);
        var started = System.Diagnostics.Stopwatch.StartNew();
        await _app.Account("bob").Approve(id);
        var response = await waiting;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("approved", (await response.Json()).Str("state"));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), "the long-poll answered on the decision, not at its timeout");
    }

    [Fact]
    public async Task Long_poll_without_wait_answers_pending_at_once_and_wait_above_60_is_400()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var agent = _app.Agent("acme");

        var response = await agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=0");
        Assert.Equal("pending", (await response.Json()).Str("state"));
        var tooLong = await agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=61");
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.True((await tooLong.Json()).GetProperty("errors").TryGetProperty("waitSeconds", out _));
    }

    [Fact]
    public async Task Bad_decision_body_is_400_naming_the_field()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var response = await _app.Account("alice").Approve(id, new { jobHash = "xyz" });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("jobHash", out _));
        var unknown = await _app.Account("alice").Approve(id, new { approve = true });
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.True((await unknown.Json()).GetProperty("errors").TryGetProperty("approve", out _));
    }

    [Fact]
    public async Task Audit_history_lists_every_transition_of_an_approval()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        await _app.Account("alice").Reject(id, new { reason = "duplicate invoice" });

        var audit = await (await _app.Account("oscar").GetAsync($"/api/v1/audit?approvalId={id}")).Json();
        var items = audit.GetProperty("items").EnumerateArray().ToList();

        Assert.Equal(["submitted", "rejected"], items.Select(i => i.Str("action")));
        Assert.Equal("user:alice", items[1].Str("actor"));
        Assert.Equal("duplicate invoice", items[1].Str("reason"));
        Assert.Equal("pending", items[1].Str("fromState"));
        Assert.Equal("rejected", items[1].Str("toState"));
        Assert.Equal("via: api", items[1].Str("details"));
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Agent("acme").GetAsync($"/api/v1/audit?approvalId={id}")).StatusCode);
        var verify = await (await _app.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verify.GetProperty("intact").GetBoolean());
    }

    [Fact]
    public async Task Audit_rows_cannot_be_edited_or_deleted()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        await using var scope = _app.Services.CreateAsyncScope();
        var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();

        await Assert.ThrowsAnyAsync<Exception>(() =>
            db.Database.ExecuteSqlRawAsync("UPDATE AuditEntries SET Reason = 'edited' WHERE ApprovalId = {0}", id));
        await Assert.ThrowsAnyAsync<Exception>(() =>
            db.Database.ExecuteSqlRawAsync("DELETE FROM AuditEntries WHERE ApprovalId = {0}", id));
        Assert.Equal(1, await AuditCount(id, "submitted"));
    }

    private Task<HttpResponseMessage> PublishPolicy(string yaml) =>
        _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent(yaml, Encoding.UTF8, "application/yaml"));

    private Task<int> AuditCount(string approvalId, string action) => _app.AuditCountAsync(approvalId, action);

}
