using System.Net;
using System.Net.Http.Json;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Admin;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>Issue 14, redaction in the portal: listed payload fields masked on the approval page (JSON view and version diff) and the queue, reasons typed on the page redacted.</summary>
public sealed class RedactionPageTests : PortalTestContext
{
    private const string ApiKey = "vendor-key-Kq82LmW3";
    private const string NewApiKey = "vendor-key-Pz19XcV7";
    private const string Card = "4111111111111111";
    private const string Token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl";

    private async Task<string> SubmitAsync()
    {
        await Workflow.SetAsync(App, new { redactFields = new[] { "apiKey", "card.number" } });
        var response = await App.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-81", apiKey = ApiKey, card = new { number = Card, holder = "Ann Lee" } },
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Json()).Str("approvalId");
    }

    [Fact]
    public async Task The_approval_page_masks_listed_fields_in_the_payload_and_the_version_diff()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitAsync();
        await App.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "rotate the key" });
        var resubmitted = await App.Agent("acme").PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-81", apiKey = NewApiKey, card = new { number = Card, holder = "Ann Lee" } } });
        Assert.Equal(HttpStatusCode.OK, resubmitted.StatusCode);

        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));

        cut.WaitForAssertion(() => Assert.Contains("INV-81", cut.Find("[data-testid=payload]").TextContent));
        Assert.Contains("[redacted:field]", cut.Find("[data-testid=payload]").TextContent);
        Assert.Contains("Ann Lee", cut.Find("[data-testid=payload]").TextContent);
        var changed = cut.Find("[data-testid=version-diff] [data-path=apiKey]");
        Assert.Equal("changed", changed.GetAttribute("data-change"));
        Assert.Contains("[redacted:field]", changed.TextContent);
        foreach (var secret in new[] { ApiKey, NewApiKey, Card })
        {
            Assert.DoesNotContain(secret, cut.Markup);
        }
    }

    [Fact]
    public async Task The_queue_shows_and_searches_the_masked_payload_only()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitAsync();

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));

        cut.WaitForAssertion(() => Assert.Single(cut.FindAll($"[data-id='{id}']")));
        Assert.DoesNotContain(ApiKey, cut.Markup);
        Assert.DoesNotContain(Card, cut.Markup);
        cut.Find("input[data-testid=queue-search], [data-testid=queue-search] input").Input(Card[..8]);
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("[data-testid=queue-empty]")), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_reason_typed_on_the_page_is_stored_redacted()
    {
        SignIn("alice", Roles.Reviewer);
        var id = await SubmitAsync();
        var cut = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        cut.WaitForElement("[data-testid=reject]");

        cut.Find("[data-testid=reason]").Input($"replayed with Bearer {Token}, do not retry");
        cut.Find("[data-testid=reject]").Click();

        cut.WaitForAssertion(() => Assert.Contains("rejected", cut.Find("[data-testid=approval-state]").TextContent));
        var approval = await (await App.Account("oscar").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.Equal("replayed with Bearer [redacted:bearer], do not retry", approval.Str("reason"));
        cut.WaitForAssertion(() => Assert.DoesNotContain(Token, cut.Markup));
    }

    [Fact]
    public async Task The_admin_edits_redact_fields_and_patterns_and_an_invalid_pattern_is_named()
    {
        SignIn("ada", Roles.Admin);
        Services.AddSingleton(App.Services.GetRequiredService<TenantSettingsService>());
        var tenants = App.Services.GetRequiredService<TenantStore>();
        var settings = (await tenants.GetSettingsAsync("acme"))!;
        var cut = Render<RedactionPanel>(p => p.Add(c => c.Settings, settings));

        cut.Find("textarea[data-testid=redact-fields], [data-testid=redact-fields] textarea").Change("apiKey\ncard.number");
        cut.Find("textarea[data-testid=redact-patterns], [data-testid=redact-patterns] textarea").Change("employee-id = \\bEMP-\\d{6}\\b\nbroken = (unclosed[");
        cut.Find("[data-testid=save-redaction]").Click();

        cut.WaitForAssertion(() => Assert.Contains("redactPatterns[1].regex", cut.Markup));
        Assert.Empty((await tenants.GetSettingsAsync("acme"))!.Redaction.Patterns);

        cut.Find("textarea[data-testid=redact-patterns], [data-testid=redact-patterns] textarea").Change("employee-id = \\bEMP-\\d{6}\\b");
        cut.Find("[data-testid=save-redaction]").Click();

        cut.WaitForElement("[data-testid=redaction-saved]");
        var saved = (await tenants.GetSettingsAsync("acme"))!.Redaction;
        Assert.Equal(["apiKey", "card.number"], saved.Fields);
        Assert.Equal(@"\bEMP-\d{6}\b", Assert.Single(saved.Patterns).Regex);
    }
}
