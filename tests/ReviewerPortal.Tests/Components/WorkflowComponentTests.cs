using Microsoft.Extensions.DependencyInjection;
using System.Net.Http.Json;
using Bunit;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Components.Pages.Cases;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

public sealed class WorkflowComponentTests : PortalTestContext
{
    [Fact]
    public async Task Reviewer_requests_changes_and_then_sees_the_diff_of_the_resubmitted_version()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        var id = (await agent.SubmitPayment(40)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=request-changes]");

        cut.Find("[data-testid=reason]").Input("attach the purchase order");
        cut.Find("[data-testid=request-changes]").Click();
        cut.WaitForAssertion(() => Assert.Contains("changes_requested", cut.Find("[data-testid=approval-state]").TextContent));
        Assert.Contains("attach the purchase order", cut.Find("[data-testid=changes-requested]").TextContent);
        Assert.Contains("resubmission window", cut.Find("[data-testid=next-timer]").TextContent);

        var resubmit = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-40", amount = 45, purchaseOrder = "PO-1" } });
        Assert.True(resubmit.IsSuccessStatusCode);

        // The open page follows live: version 2 with the changed and added fields.
        cut.WaitForAssertion(() => Assert.Contains("version 2", cut.Find("[data-testid=approval-version]").TextContent));
        Assert.Contains("45", cut.Find("[data-testid=version-diff] tr[data-path=amount][data-change=changed]").TextContent);
        Assert.Contains("PO-1", cut.Find("[data-testid=version-diff] tr[data-path=purchaseOrder][data-change=added]").TextContent);
        Assert.Contains("pending", cut.Find("[data-testid=approval-state]").TextContent);
    }

    [Fact]
    public async Task A_backup_sees_the_decision_panel_only_once_the_approval_is_escalated_to_them()
    {
        await Workflow.SetAsync(App, new { sla = "01:00:00", escalation = new[] { new { approvers = new[] { "carol" }, sla = "01:00:00" } } });
        SignIn("carol", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(41)).Str("approvalId");

        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=read-only]")));
        Assert.Contains("escalation in", cut.Find("[data-testid=next-timer]").TextContent);
        Assert.Contains("level 0", cut.Find("[data-testid=escalation-level]").TextContent);
    }

    [Fact]
    public async Task Approver_decides_a_case_in_review_on_the_case_board()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        var opened = await (await agent.PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech", documents = new[] { "passport" } })).Json();
        var id = opened.GetProperty("case").Str("id");
        await agent.PostAsJsonAsync($"/api/v1/cases/{id}/documents", new { documents = new { passport = "p-123.pdf" } });

        var cut = Render<CaseBoard>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Contains("Onboarding Initech", cut.Find("[data-testid=cases]").TextContent));
        Assert.Contains("in review", cut.Find("[data-testid=case-state]").TextContent);

        cut.Find("[data-testid=case-approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=case-state]").TextContent));
        Assert.Contains("approved", (await (await agent.GetAsync($"/api/v1/cases/{id}")).Json()).Str("state"));
    }

    [Fact]
    public async Task On_call_sees_approvals_awaiting_resubmission_live()
    {
        SignIn("oscar", Roles.OnCall);
        var id = (await App.Agent("acme").SubmitPayment(42)).Str("approvalId");
        var cut = Render<ReviewerPortal.Components.Pages.OnCall.Board>();
        cut.WaitForAssertion(() => Assert.Equal("0", cut.Find("tr[data-tenant=acme] [data-testid=board-resubmission]").TextContent));

        await App.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "wrong cost centre" });

        cut.WaitForAssertion(() => Assert.Equal("1", cut.Find("tr[data-tenant=acme] [data-testid=board-resubmission]").TextContent));
        Assert.Equal("0", cut.Find("tr[data-tenant=acme] [data-testid=board-pending]").TextContent);
        Assert.Equal("0", cut.Find("tr[data-tenant=acme] [data-testid=board-notify-failures]").TextContent);
    }

    [Fact]
    public async Task On_call_board_shows_the_figures_of_the_metrics_decided_and_the_audit_outbox()
    {
        SignIn("oscar", Roles.OnCall);
        var approved = (await App.Agent("acme").SubmitPayment(43)).Str("approvalId");
        await App.Account("alice").Approve(approved);
        // An audit entry waiting in the outbox, as one whose commit failed would.
        var entry = App.Services.GetRequiredService<ReviewerPortal.Features.Audit.AuditLog>().NewEntry("acme", "test", "stranded");
        await App.Services.GetRequiredService<ReviewerPortal.Infrastructure.Redis.RedisConnection>().Database.ListLeftPushAsync(
            ReviewerPortal.Infrastructure.Redis.RedisKeys.AuditOutbox("acme"),
            System.Text.Json.JsonSerializer.Serialize(entry, ReviewerPortal.Infrastructure.Json.AppJsonContext.Default.AuditEntry));

        var cut = Render<ReviewerPortal.Components.Pages.OnCall.Board>();

        cut.WaitForAssertion(() => Assert.Equal("approved 1", cut.Find("tr[data-tenant=acme] [data-testid=board-decided]").TextContent));
        Assert.StartsWith("1", cut.Find("tr[data-tenant=acme] [data-testid=board-outbox]").TextContent.Trim());
        Assert.Equal("0", cut.Find("tr[data-tenant=globex] [data-testid=board-outbox]").TextContent.Trim());
    }

    [Fact]
    public async Task Another_tenants_cases_are_not_found_on_the_board()
    {
        SignIn("gina", Roles.Reviewer);
        var cut = Render<CaseBoard>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("[data-testid=not-found]")));
        await Task.CompletedTask;
    }
}
