using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Approvals.Links;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>An approver opens the approve link from a notification in Debian's chromium, confirms, and sees the outcome.</summary>
public sealed class ActionLinkBrowserTests : PortalBrowserTest
{
    /// <summary>The approver's approve link of the approval, as a notification carries it (path only: the app's own address).</summary>
    public static async Task<string> LinkAsync(TestApp app, string approvalId, string approver)
    {
        var approval = await app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", approvalId);
        var keys = app.Services.GetRequiredService<ActionLinkKeys>();
        var (kid, _) = await keys.CurrentAsync("acme");
        var token = new ActionLinkToken(kid, "acme", approvalId, approval!.JobHash, approver, Verdict.Approve,
            approval.ExpiresAt < DateTimeOffset.UtcNow.AddHours(1) ? approval.ExpiresAt : DateTimeOffset.UtcNow.AddHours(1), Guid.NewGuid().ToString("N"));
        return "/a/" + await keys.SignAsync(token);
    }

    [SkippableFact]
    public async Task An_approver_opens_the_link_confirms_with_a_reason_and_sees_it_approved_once()
    {
        var id = (await App.Agent("acme").SubmitPayment(420)).Str("approvalId");
        var link = await LinkAsync(App, id, "alice");
        var page = await Browser.NewPageAsync(App.BaseUrl, width: 390, height: 844);

        await page.GotoAsync(link);
        await Expect(page.GetByTestId("link-title")).ToHaveTextAsync("Approve this request?");
        await Expect(page.GetByTestId("link-payload")).ToContainTextAsync("INV-420");
        Assert.Equal("pending", (await Workflow(id)).Str("state")); // opening it decided nothing
        await page.GetByTestId("link-reason").FillAsync("invoice matches the purchase order");
        await page.GetByTestId("link-approve").ClickAsync();

        await Expect(page.GetByTestId("link-title")).ToHaveTextAsync("Approved");
        await Expect(page.GetByTestId("link-state")).ToHaveTextAsync("approved by alice");
        var approval = await Workflow(id);
        Assert.Equal("approved", approval.Str("state"));
        Assert.Equal("invoice matches the purchase order", approval.Str("reason"));

        // Back to the link (a second click from the mail): it says what happened and by whom.
        await page.GotoAsync(link);
        await Expect(page.GetByTestId("link-title")).ToHaveTextAsync("This link was already used");
        await Expect(page.GetByTestId("link-message")).ToContainTextAsync("already approved by alice");
        var folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, "action-link-used.png"), FullPage = true });
    }

    private async Task<System.Text.Json.JsonElement> Workflow(string id) =>
        await (await App.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
}
