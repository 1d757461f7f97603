using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Links;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Approvals.Links;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>The action link's confirmation page: rendering it (what a GET does) shows the request and decides nothing.</summary>
public sealed class ActionLinkPageTests : PortalTestContext
{
    protected override IDictionary<string, string?>? AppSettings => new Dictionary<string, string?> { ["Portal:PublicBaseUrl"] = ActionLinkTests.BaseUrl };

    [Fact]
    public async Task The_page_shows_the_request_masked_with_approve_reject_and_open_and_decides_nothing()
    {
        Services.AddSingleton(App.Services.GetRequiredService<ActionLinks>());
        await Workflow.SetAsync(App, new { redactFields = new[] { "iban" } });
        var response = await App.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", priority = "high", payload = new { invoice = "INV-5", iban = "DE02120300000000202051" },
        });
        var id = (await response.Json()).Str("approvalId");
        var approval = await App.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        var links = await App.Services.GetRequiredService<ActionLinks>().ForApproverAsync(approval!, "alice");

        var page = Render<ActionLink>(p => p.Add(c => c.Token, new Uri(links!.Approve).Segments[^1]));

        page.WaitForAssertion(() => Assert.Equal("Approve this request?", page.Find("[data-testid=link-title]").TextContent));
        Assert.Contains("INV-5", page.Find("[data-testid=link-payload]").TextContent);
        Assert.DoesNotContain("DE02120300000000202051", page.Markup);
        Assert.Equal("Approve", page.Find("[data-testid=link-approve]").TextContent);
        Assert.Equal("Reject", page.Find("[data-testid=link-reject]").TextContent);
        Assert.Equal(ActionLinkTests.BaseUrl + "approvals/" + id, page.Find("[data-testid=link-open]").GetAttribute("href"));
        Assert.Equal("pending", page.Find("[data-testid=link-state]").TextContent);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(App, id)).Str("state"));
        Assert.Equal(0, await App.AuditCountAsync(id, "approved"));
        Assert.Equal(0, await App.AuditCountAsync(id, "approve_refused"));
    }
}
