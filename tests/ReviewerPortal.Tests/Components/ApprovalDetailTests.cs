using System.Text;
using Bunit;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

public sealed class ApprovalDetailTests : PortalTestContext
{
    [Fact]
    public async Task Approver_sees_the_job_and_approves_it()
    {
        SignIn("alice", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(77)).Str("approvalId");

        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForAssertion(() => Assert.Contains("INV-77", cut.Find("[data-testid=payload]").TextContent));
        Assert.Contains("No change", cut.Find("[data-testid=policy-unchanged]").TextContent);

        cut.Find("[data-testid=reason]").Input("checked the invoice");
        cut.Find("[data-testid=approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=approval-state]").TextContent));
        var approval = await (await App.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.Equal("checked the invoice", approval.Str("reason"));
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-testid=audit-trail] [data-action=approved]")));
    }

    [Fact]
    public async Task Snapshot_conflict_is_shown_in_words_with_re_evaluate_as_the_way_out()
    {
        SignIn("bob", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(5)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=approve]");

        var publish = await App.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent(
            "version: v1\nrules:\n  - id: require-approval-prod-finance\n    when: { topic: finance.payment.execute }\n    decision: require_human\n",
            Encoding.UTF8, "application/yaml"));
        Assert.True(publish.IsSuccessStatusCode);
        // The open page picks the new policy up live: the diff shows the changed rule.
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-rule='require-approval-prod-finance'][data-change=changed]")));

        cut.Find("[data-testid=approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("policy changed", cut.Find("[data-testid=conflict]").TextContent));
        Assert.Contains("pending", cut.Find("[data-testid=approval-state]").TextContent);
        cut.Find("[data-testid=reevaluate]").Click();
        cut.WaitForAssertion(() => Assert.Contains("Re-evaluated", cut.Find("[data-testid=decision-message]").TextContent));
        cut.Find("[data-testid=approve]").Click();
        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=approval-state]").TextContent));
    }

    [Fact]
    public async Task Decision_made_elsewhere_first_is_explained_with_reload()
    {
        SignIn("alice", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(6)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=reject]");
        var button = cut.Find("[data-testid=reject]");
        await App.Account("bob").Approve(id);

        button.Click();

        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=approval-state]").TextContent));
    }

    [Fact]
    public async Task On_call_reads_without_a_decision_panel()
    {
        SignIn("oscar", Roles.OnCall);
        var id = (await App.Agent("acme").SubmitPayment(9)).Str("approvalId");

        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));

        cut.WaitForElement("[data-testid=read-only]");
        Assert.Empty(cut.FindAll("[data-testid=decision-panel]"));
        Assert.Empty(cut.FindAll("[data-testid=approve]"));
    }

    [Fact]
    public async Task Another_tenants_approval_is_not_found()
    {
        SignIn("gina", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(10)).Str("approvalId");

        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));

        cut.WaitForElement("[data-testid=not-found]");
        Assert.DoesNotContain("INV-10", cut.Markup);
    }
}
