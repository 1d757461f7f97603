using System.Net.Http.Json;
using Bunit;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>Issue 16 in the portal: the approval page's "Edit and approve" and "Approve always" modes.</summary>
public sealed class EditAndApproveFormTests : PortalTestContext
{
    [Fact]
    public async Task An_approver_edits_a_field_and_approves_the_edited_job()
    {
        SignIn("alice", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(420)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=edit-open]").Click();

        var editor = cut.WaitForElement("[data-testid=edit-payload]");
        Assert.Contains("\"amount\": 420", editor.GetAttribute("value") ?? editor.TextContent);
        editor.Input((editor.GetAttribute("value") ?? editor.TextContent).Replace("420,", "400,").Replace("\"amount\": 420", "\"amount\": 400"));
        cut.Find("[data-testid=reason]").Input("amount per contract");
        cut.Find("[data-testid=edit-approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=approval-state]").TextContent));
        var approval = await (await App.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.True(approval.GetProperty("edited").GetBoolean());
        Assert.Equal(400, approval.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.Equal("amount per contract", approval.Str("reason"));
        cut.WaitForAssertion(() => Assert.Contains("edited by alice", cut.Find("[data-testid=edited]").TextContent));
    }

    [Fact]
    public async Task Json_that_is_not_an_object_is_explained_and_nothing_changes()
    {
        SignIn("alice", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(421)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=edit-open]").Click();

        cut.WaitForElement("[data-testid=edit-payload]").Input("{ \"amount\": ");
        cut.Find("[data-testid=edit-approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("not valid JSON", cut.Find("[data-testid=edit-error]").TextContent));
        Assert.Contains("pending", cut.Find("[data-testid=approval-state]").TextContent);
        Assert.Equal(1, (await (await App.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task Approve_always_adds_a_standing_approval_bound_to_the_chosen_field()
    {
        SignIn("alice", Roles.Reviewer);
        var id = (await App.Agent("acme").SubmitPayment(422)).Str("approvalId");
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=always-open]").Click();

        cut.WaitForElement("[data-testid=always-for]").Change("2h");
        cut.Find("[data-testid='always-field-payload.invoice']").Change(true);
        cut.Find("[data-testid=always-approve]").Click();

        cut.WaitForAssertion(() => Assert.Contains("approved", cut.Find("[data-testid=approval-state]").TextContent));
        cut.WaitForAssertion(() => Assert.Contains("standing approval", cut.Find("[data-testid=decision-message]").TextContent));
        var listed = await (await App.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json();
        var item = Assert.Single(listed.GetProperty("items").EnumerateArray());
        Assert.Equal("INV-422", item.GetProperty("when").Str("payload.invoice"));
    }

    [Fact]
    public async Task An_admin_sees_the_standing_approvals_and_revokes_one()
    {
        var id = (await App.Agent("acme").SubmitPayment(423)).Str("approvalId");
        var granted = await (await App.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/approve-always", new { @for = "4h" })).Json();
        var ruleId = granted.GetProperty("standing").Str("ruleId");
        SignIn("ada", Roles.Admin);

        var cut = Render<ReviewerPortal.Components.Pages.Admin.StandingApprovalsPanel>(p => p.Add(c => c.Tenant, "acme"));
        var item = cut.WaitForElement($"[data-testid=standing-item][data-rule='{ruleId}']");
        Assert.Contains("topic = finance.payment.execute", item.TextContent);
        cut.Find("[data-testid=standing-revoke]").Click();

        cut.WaitForAssertion(() => Assert.Contains("Revoked", cut.Find("[data-testid=standing-revoked]").TextContent));
        cut.WaitForElement("[data-testid=standing-none]");
        Assert.Empty((await (await App.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json()).GetProperty("items").EnumerateArray());
        Assert.Equal(System.Net.HttpStatusCode.Accepted, (await App.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-9", amount = 9 },
        })).StatusCode);
    }
}
