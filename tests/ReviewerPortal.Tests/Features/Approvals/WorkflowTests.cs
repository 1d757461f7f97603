using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// The workflow-engine behaviours on Redis timers, with a fake clock: days pass in milliseconds, nothing sleeps.
/// acme's approvers are alice and bob; carol is the demo backup approver.
/// </summary>
public sealed class WorkflowTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ExpiryService Timers => _app.Services.GetRequiredService<ExpiryService>();

    /// <summary>Moves the clock and runs every due timer, as the timer service does when it wakes.</summary>
    private async Task PassAsync(TimeSpan span)
    {
        _clock.Advance(span);
        await Timers.RunDueAsync(CancellationToken.None);
    }

    private Task<JsonElement> ApprovalAsync(string id) => Workflow.GetApprovalAsync(_app, id);

    [Fact]
    public async Task Reminders_go_out_at_the_interval_and_stop_at_the_maximum()
    {
        await Workflow.SetAsync(_app, new { sla = "04:00:00", reminderInterval = "01:00:00", maxReminders = 2 });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var submitted = await ApprovalAsync(id);
        Assert.Equal("reminder", submitted.GetProperty("nextTimer").Str("kind"));
        Assert.Equal(_clock.GetUtcNow().AddHours(1), submitted.GetProperty("nextTimer").GetProperty("dueAt").GetDateTimeOffset());

        await PassAsync(TimeSpan.FromMinutes(59));
        Assert.Equal(0, await _app.AuditCountAsync(id, "reminder_sent"));

        await PassAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await _app.AuditCountAsync(id, "reminder_sent"));
        await PassAsync(TimeSpan.FromHours(1));
        Assert.Equal(2, await _app.AuditCountAsync(id, "reminder_sent"));
        await PassAsync(TimeSpan.FromHours(1));
        await PassAsync(TimeSpan.FromMinutes(59));

        Assert.Equal(2, await _app.AuditCountAsync(id, "reminder_sent"));
        var approval = await ApprovalAsync(id);
        Assert.Equal(2, approval.GetProperty("remindersSent").GetInt32());
        Assert.Equal("pending", approval.Str("state"));
        Assert.Equal("timeout", approval.GetProperty("nextTimer").Str("kind"));
    }

    [Fact]
    public async Task After_the_sla_the_backup_is_notified_and_may_decide_while_before_it_cannot()
    {
        await Workflow.SetAsync(_app, new { sla = "01:00:00", escalation = new[] { new { approvers = new[] { "carol" }, sla = "02:00:00" } } });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var carol = _app.Account("carol");

        // Carol reads the tenant (she is on its ladder) but may not decide before the escalation reaches her.
        Assert.Equal(HttpStatusCode.OK, (await carol.GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        var early = await carol.Approve(id);
        Assert.Equal(HttpStatusCode.Forbidden, early.StatusCode);
        Assert.Equal("not_an_approver", (await early.Json()).Str("code"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "approve_refused"));

        await PassAsync(TimeSpan.FromMinutes(30));
        Assert.Equal(0, (await ApprovalAsync(id)).GetProperty("escalationLevel").GetInt32());
        await PassAsync(TimeSpan.FromMinutes(30));

        var escalated = await ApprovalAsync(id);
        Assert.Equal(1, escalated.GetProperty("escalationLevel").GetInt32());
        Assert.Equal(1, await _app.AuditCountAsync(id, "escalated"));
        Assert.Equal("timeout", escalated.GetProperty("nextTimer").Str("kind"));

        var approved = await carol.Approve(id);
        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        var body = await approved.Json();
        Assert.Equal("approved", body.Str("result"));
        Assert.Equal("carol", body.GetProperty("approval").Str("decidedBy"));

        // Nothing fires for a decided approval.
        await PassAsync(TimeSpan.FromHours(5));
        Assert.Equal(0, await _app.AuditCountAsync(id, "timed_out"));
    }

    [Theory]
    [InlineData("reject", "rejected")]
    [InlineData("approve", "approved")]
    [InlineData("escalate", "escalated")]
    public async Task When_every_level_runs_out_the_timeout_outcome_applies(string outcome, string state)
    {
        await Workflow.SetAsync(_app, new
        {
            sla = "01:00:00",
            escalation = new[] { new { approvers = new[] { "carol" }, sla = "01:00:00" } },
            timeoutOutcome = outcome,
        });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        await PassAsync(TimeSpan.FromHours(1));
        Assert.Equal("pending", (await ApprovalAsync(id)).Str("state"));
        await PassAsync(TimeSpan.FromHours(1));

        var approval = await ApprovalAsync(id);
        Assert.Equal(state, approval.Str("state"));
        Assert.Equal("system:timeout", approval.Str("decidedBy"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "timed_out"));
        Assert.Equal(JsonValueKind.Null, approval.GetProperty("nextTimer").ValueKind);
    }

    [Fact]
    public async Task A_policy_rule_chooses_its_own_timeout_outcome_and_the_default_is_reject()
    {
        await Workflow.SetAsync(_app, new { sla = "01:00:00" });
        var publish = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
            version: v1
            default: require_human
            rules:
              - id: small-refunds
                when: { topic: finance.refund }
                decision: require_human
                on_timeout: approve
            """, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, publish.StatusCode);
        var agent = _app.Agent("acme");
        var refund = await (await agent.Submit(new { topic = "finance.refund", env = "production", payload = new { amount = 5 } })).Json();
        var payment = await agent.SubmitPayment();

        await PassAsync(TimeSpan.FromHours(1));

        Assert.Equal("approved", (await ApprovalAsync(refund.Str("approvalId"))).Str("state"));
        Assert.Equal("rejected", (await ApprovalAsync(payment.Str("approvalId"))).Str("state"));
    }

    [Fact]
    public async Task A_timeout_approve_is_refused_when_the_policy_drifted_and_the_approval_is_rejected_instead()
    {
        await Workflow.SetAsync(_app, new { sla = "01:00:00", timeoutOutcome = "approve" });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var publish = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent(
            "version: v1\nrules:\n  - id: all-payments\n    when: { topic: finance.payment.execute }\n    decision: require_human\n",
            Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, publish.StatusCode);

        await PassAsync(TimeSpan.FromHours(1));

        var approval = await ApprovalAsync(id);
        Assert.Equal("rejected", approval.Str("state"));
        Assert.Contains("policy changed", approval.Str("reason"));
    }

    [Fact]
    public async Task Quorum_needs_distinct_approvers_and_the_same_person_counts_once()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        var first = await (await _app.Account("alice").Approve(id)).Json();
        Assert.Equal("vote_recorded", first.Str("result"));
        Assert.Equal("pending", first.Str("state"));
        var again = await (await _app.Account("alice").Approve(id)).Json();
        Assert.Equal("already_approved", again.Str("result"));
        Assert.Equal("pending", again.Str("state"));
        Assert.Single((await ApprovalAsync(id)).GetProperty("votes").EnumerateArray());

        var second = await (await _app.Account("bob").Approve(id)).Json();
        Assert.Equal("approved", second.Str("result"));
        Assert.Equal(2, second.GetProperty("approval").GetProperty("votes").GetArrayLength());
        Assert.Equal(1, await _app.AuditCountAsync(id, "vote_approve"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "approved"));
    }

    [Fact]
    public async Task Under_quorum_one_rejection_rejects_by_default()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        await _app.Account("alice").Approve(id);

        var rejected = await (await _app.Account("bob").Reject(id)).Json();

        Assert.Equal("rejected", rejected.Str("result"));
    }

    [Fact]
    public async Task Concurrent_quorum_votes_of_distinct_people_each_count_once()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        var answers = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => _app.Account(i % 2 == 0 ? "alice" : "bob").Approve(id)));

        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
        Assert.Equal("approved", (await ApprovalAsync(id)).Str("state"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "approved"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "vote_approve"));
    }

    [Fact]
    public async Task The_requester_may_not_approve_their_own_request_unless_the_tenant_allows_it()
    {
        var agent = _app.Agent("acme");
        var response = await agent.Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-9", amount = 9 }, requestedBy = "alice",
        });
        var id = (await response.Json()).Str("approvalId");

        var own = await _app.Account("alice").Approve(id);
        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        Assert.Equal("requester_may_not_approve", (await own.Json()).Str("code"));
        var onCall = await _app.Account("oscar").Approve(id);
        Assert.Equal(HttpStatusCode.Forbidden, onCall.StatusCode);
        Assert.Equal("not_an_approver", (await onCall.Json()).Str("code"));
        Assert.Equal(2, await _app.AuditCountAsync(id, "approve_refused"));
        Assert.Equal("pending", (await ApprovalAsync(id)).Str("state"));

        await Workflow.SetAsync(_app, new { requesterMayApprove = true });
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task Changes_requested_then_resubmitted_makes_a_new_version_with_lineage_and_fresh_votes()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 }, maxResubmissions = 1, resubmissionWindow = "1.00:00:00" });
        var agent = _app.Agent("acme");
        var submitted = await agent.SubmitPayment(100);
        var id = submitted.Str("approvalId");
        await _app.Account("alice").Approve(id);

        var waiting = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");
        var changes = await _app.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "attach the purchase order" });
        Assert.Equal(HttpStatusCode.OK, changes.StatusCode);
        var seen = await (await waiting).Json();
        Assert.Equal("changes_requested", seen.Str("state"));
        Assert.Equal("attach the purchase order", seen.Str("changesReason"));

        _clock.Advance(TimeSpan.FromHours(3));
        var resubmitted = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, purchaseOrder = "PO-7" }, idempotencyKey = "fix-1" });
        Assert.Equal(HttpStatusCode.OK, resubmitted.StatusCode);
        var v2 = (await resubmitted.Json()).GetProperty("approval");
        Assert.Equal(2, v2.GetProperty("version").GetInt32());
        Assert.Equal("pending", v2.Str("state"));
        Assert.NotEqual(submitted.Str("jobHash"), v2.Str("jobHash"));
        Assert.NotEqual(submitted.Str("jobId"), v2.Str("jobId"));
        Assert.Empty(v2.GetProperty("votes").EnumerateArray());
        var lineage = Assert.Single(v2.GetProperty("lineage").EnumerateArray());
        Assert.Equal(1, lineage.GetProperty("version").GetInt32());
        Assert.Equal(submitted.Str("jobHash"), lineage.Str("jobHash"));
        Assert.Equal("attach the purchase order", lineage.Str("changesReason"));
        Assert.Single(lineage.GetProperty("votes").EnumerateArray());
        Assert.Equal(_clock.GetUtcNow().AddHours(24), v2.GetProperty("expiresAt").GetDateTimeOffset());

        // The same resubmission again is answered, not applied twice.
        var replay = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, purchaseOrder = "PO-7" }, idempotencyKey = "fix-1" });
        Assert.Equal("already_resubmitted", (await replay.Json()).Str("result"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "resubmitted"));

        // The one allowed resubmission is used: asking for changes again ends it.
        var final = await (await _app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "still wrong" })).Json();
        Assert.Equal("rejected", final.Str("state"));
        Assert.Contains("maximum of 1 resubmission", final.GetProperty("approval").Str("reason"));
    }

    [Fact]
    public async Task A_resubmission_window_that_runs_out_rejects_and_a_late_resubmit_is_409()
    {
        await Workflow.SetAsync(_app, new { resubmissionWindow = "2.00:00:00" });
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment()).Str("approvalId");
        await _app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "wrong amount" });
        Assert.Equal("resubmission_window", (await ApprovalAsync(id)).GetProperty("nextTimer").Str("kind"));

        await PassAsync(TimeSpan.FromDays(2) - TimeSpan.FromSeconds(1));
        Assert.Equal("changes_requested", (await ApprovalAsync(id)).Str("state"));
        await PassAsync(TimeSpan.FromSeconds(1));

        Assert.Equal("rejected", (await ApprovalAsync(id)).Str("state"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "resubmission_window_closed"));
        var late = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit", new { payload = new { amount = 1 } });
        Assert.Equal(HttpStatusCode.Conflict, late.StatusCode);
    }

    [Fact]
    public async Task The_submitter_withdraws_once_and_nobody_can_decide_after()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment()).Str("approvalId");

        var withdrawn = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/withdraw", new { reason = "no longer needed" });
        Assert.Equal("withdrawn", (await withdrawn.Json()).Str("state"));
        Assert.Equal("already_withdrawn", (await (await agent.PostAsync($"/api/v1/approvals/{id}/withdraw", null)).Json()).Str("result"));
        var approve = await _app.Account("alice").Approve(id);
        Assert.Equal(HttpStatusCode.Conflict, approve.StatusCode);
        Assert.Equal(1, await _app.AuditCountAsync(id, "withdrawn"));
        // Its timers are gone with it.
        await PassAsync(TimeSpan.FromDays(2));
        Assert.Equal(0, await _app.AuditCountAsync(id, "expired"));
    }

    [Fact]
    public async Task Only_the_submitting_agent_resubmits_or_withdraws_and_other_tenants_see_404()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        Assert.Equal(HttpStatusCode.NotFound, (await _app.Agent("globex").PostAsync($"/api/v1/approvals/{id}/withdraw", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("gina").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Account("alice").PostAsync($"/api/v1/approvals/{id}/withdraw", null)).StatusCode);
    }

    [Theory]
    [InlineData("sla", "5s")]
    [InlineData("reminderInterval", "often")]
    [InlineData("timeoutOutcome", "maybe")]
    [InlineData("maxReminders", -1)]
    public async Task Bad_workflow_settings_are_400_naming_the_field_and_change_nothing(string field, object value)
    {
        var response = await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new Dictionary<string, object> { [field] = value });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty(field, out _));
        var settings = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(JsonValueKind.Null, settings.GetProperty("sla").ValueKind);
        Assert.Equal("reject", settings.Str("timeoutOutcome"));
    }

    [Fact]
    public async Task Nested_workflow_fields_are_named_when_wrong()
    {
        var ada = _app.Account("ada");
        var quorum = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { quorum = new { required = 3, of = 3 } });
        Assert.True((await quorum.Json()).GetProperty("errors").TryGetProperty("quorum.of", out _));
        var level = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { sla = "1h", escalation = new[] { new { approvers = new[] { "carol" } } } });
        Assert.True((await level.Json()).GetProperty("errors").TryGetProperty("escalation[0].sla", out _));
        var unknown = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { quorum = new { required = 1, of = 1, majority = true } });
        Assert.True((await unknown.Json()).GetProperty("errors").TryGetProperty("majority", out _));
    }
}

/// <summary>Shared steps of the workflow tests.</summary>
public static class Workflow
{
    public static async Task SetAsync(TestApp app, object settings, string tenant = "acme")
    {
        var response = await app.Account("ada").PutAsJsonAsync($"/api/v1/tenants/{tenant}/settings", settings);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    public static async Task<JsonElement> GetApprovalAsync(TestApp app, string id, string tenant = "acme") =>
        await (await app.Agent(tenant).GetAsync($"/api/v1/approvals/{id}")).Json();
}
