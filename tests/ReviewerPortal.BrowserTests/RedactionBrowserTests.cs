using System.Net.Http.Json;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>Issue 14 in Debian's chromium: a masked payload field and a token typed into a rejection reason, as a reviewer sees them.</summary>
public sealed class RedactionBrowserTests : PortalBrowserTest
{
    private const string VendorKey = "vendor-key-Browser-77";
    private const string Token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJicm93c2VyIn0.c2lnbmF0dXJlLWJyb3dzZXI";

    [SkippableFact]
    public async Task A_reviewer_sees_the_listed_field_masked_and_a_token_in_the_reason_is_redacted_on_the_page_and_in_the_audit_page()
    {
        var put = await App.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { redactFields = new[] { "apiKey" } });
        Assert.True(put.IsSuccessStatusCode);
        var submitted = await App.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-77", apiKey = VendorKey },
        });
        var id = (await submitted.Json()).Str("approvalId");
        var page = await Browser.SignInAsync(App.BaseUrl, "alice");

        await page.GotoAsync($"{App.BaseUrl}/approvals/{id}");
        await BrowserSession.Interactive(page);
        await Expect(page.GetByTestId("payload")).ToContainTextAsync("[redacted:field]");
        Assert.DoesNotContain(VendorKey, await page.ContentAsync());
        await page.GetByTestId("reason").FillAsync($"the agent pasted Authorization: Bearer {Token} into the job; rejected");
        await page.GetByTestId("reject").ClickAsync();
        await Expect(page.GetByTestId("approval-state")).ToContainTextAsync("rejected");
        await Expect(page.Locator("body")).ToContainTextAsync("Bearer [redacted:bearer]");
        Assert.DoesNotContain(Token, await page.ContentAsync());

        var oscar = await Browser.SignInAsync(App.BaseUrl, "oscar");
        await oscar.GotoAsync($"{App.BaseUrl}/audit?approvalId={id}");
        await BrowserSession.Interactive(oscar);
        await Expect(oscar.GetByTestId("audit-table")).ToContainTextAsync("Bearer [redacted:bearer]");
        Assert.DoesNotContain(Token, await oscar.ContentAsync());
        var folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, "redaction-approval.png"), FullPage = true });
        await oscar.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, "redaction-audit.png"), FullPage = true });
    }
}
