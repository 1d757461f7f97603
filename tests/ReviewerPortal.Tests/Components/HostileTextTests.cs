using System.Net.Http.Json;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Components.Pages.Audit;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>
/// What an agent or a reviewer types is shown as text: markup stays inert, and bidirectional controls (the
/// "Trojan Source" trick that shows <c>invoice‮fdp.exe</c> as <c>invoiceexe.pdf</c>) are made visible, on every page
/// a reviewer decides from.
/// </summary>
public sealed class HostileTextTests : PortalTestContext
{
    private const string Script = "<script>alert(1)</script>";
    private const string Image = "<img src=x onerror=alert(1)>";
    private const string Flipped = "invoice\u202Efdp.exe";

    private async Task<string> SubmitHostileAsync()
    {
        var response = await App.Agent("acme").PostAsJsonAsync("/api/v1/jobs", new
        {
            topic = "finance.payment.execute",
            env = "production",
            priority = "high",
            requestedBy = "dave\u202Enimda",
            payload = new { file = Flipped, invoice = Script, note = Image, amount = 1 },
        });
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Json()).Str("approvalId");
    }

    private static void AssertInert<T>(string markup, IRenderedComponent<T> cut) where T : Microsoft.AspNetCore.Components.IComponent
    {
        Assert.Empty(cut.FindAll("script"));
        Assert.Empty(cut.FindAll("[onerror]"));
        Assert.Empty(cut.FindAll("img[src=x]"));
        Assert.DoesNotContain('\u202E', markup);
        Assert.Contains("[U+202E]", markup);
    }

    [Fact]
    public async Task The_queue_shows_hostile_payloads_as_inert_visible_text()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitHostileAsync();
        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForElement($"[data-id='{id}']");
        AssertInert(cut.Markup, cut);
        Assert.Contains("&lt;script&gt;", cut.Markup);
    }

    [Fact]
    public async Task The_approval_page_shows_hostile_payloads_as_inert_visible_text()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitHostileAsync();
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=payload]");
        AssertInert(cut.Markup, cut);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", cut.Markup);
        Assert.Contains("invoice[U+202E]fdp.exe", cut.Find("[data-testid=payload]").TextContent);
    }

    [Fact]
    public async Task The_audit_page_shows_hostile_reasons_as_inert_visible_text()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitHostileAsync();
        await App.Account("alice").Reject(id, new { reason = Script + Image + Flipped });
        Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>().NavigateTo($"audit?approvalId={id}");
        var cut = Render<AuditHistory>();
        cut.WaitForAssertion(() => Assert.Contains("rejected", cut.Markup));
        AssertInert(cut.Markup, cut);
        Assert.Contains("&lt;script&gt;", cut.Markup);
    }
}
