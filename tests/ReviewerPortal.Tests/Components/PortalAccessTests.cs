using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Layout;
using ReviewerPortal.Components.Pages.Admin;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Components.Shared;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>Forbidden and unknown pages are friendly portal pages; the navigation offers only what the role may open (security issue #17).</summary>
public sealed class PortalAccessTests : PortalTestContext
{
    [Fact]
    public void Access_denied_to_a_tenant_admin_says_so_in_words()
    {
        SignIn("oscar", Roles.OnCall);

        var cut = Render<AccessDenied>(p => p.Add(c => c.RouteData,
            new RouteData(typeof(TenantAdmin), new Dictionary<string, object?> { ["Tenant"] = "acme" })));

        Assert.Contains("You do not have access to this tenant's admin", cut.Find("[data-testid=access-denied]").TextContent);
        Assert.Empty(cut.FindAll("[data-testid=settings]"));
    }

    [Fact]
    public void Access_denied_to_another_page_names_no_tenant()
    {
        SignIn("oscar", Roles.OnCall);

        var cut = Render<AccessDenied>(p => p.Add(c => c.RouteData,
            new RouteData(typeof(ApprovalDetail), new Dictionary<string, object?> { ["Id"] = "apr_x" })));

        Assert.Contains("You do not have access to this page", cut.Find("[data-testid=access-denied]").TextContent);
    }

    [Fact]
    public async Task Another_tenants_approval_reads_exactly_like_an_unknown_id()
    {
        SignIn("alice", Roles.Reviewer); // approver of acme only
        var globex = (await App.Agent("globex").SubmitPayment(9)).Str("approvalId");
        var unknown = "apr_" + new string('0', globex.Length - 4);

        var other = Render<ApprovalDetail>(p => p.Add(c => c.Id, globex));
        var missing = Render<ApprovalDetail>(p => p.Add(c => c.Id, unknown));

        other.WaitForAssertion(() => Assert.Contains("Approval not found", other.Find("[data-testid=not-found]").TextContent));
        missing.WaitForAssertion(() => Assert.Contains("Approval not found", missing.Find("[data-testid=not-found]").TextContent));
        Assert.Equal(missing.Find("[data-testid=not-found]").TextContent, other.Find("[data-testid=not-found]").TextContent);
        Assert.DoesNotContain("INV-9", other.Markup);
        Assert.DoesNotContain("globex", other.Markup);
    }

    [Theory]
    [InlineData("oscar", Roles.OnCall, false)]
    [InlineData("alice", Roles.Reviewer, false)]
    [InlineData("ada", Roles.Admin, true)]
    public void The_navigation_offers_admin_only_to_admins(string user, string role, bool admin)
    {
        Services.AddSingleton(App.Services.GetRequiredService<DemoMode>());
        SignIn(user, role);
        Renderer.SetRendererInfo(new RendererInfo("Server", isInteractive: true));

        var cut = Render<MainLayout>(p => p.Add(c => c.Body, (RenderFragment)(b => b.AddContent(0, "page"))));

        var links = cut.FindAll("nav.rp-nav a").Select(a => a.GetAttribute("href")).ToList();
        Assert.Contains("/queue", links);
        Assert.Equal(admin, links.Contains("/admin"));
    }
}
