using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>Bulk decisions in the queue, in Debian's chromium, as a reviewer uses them.</summary>
public sealed class BulkBrowserTests : PortalBrowserTest
{
    [SkippableFact]
    public async Task Reviewer_ticks_three_in_the_queue_previews_the_total_and_approves_them_with_one_reason()
    {
        var app = App;
        var agent = app.Agent("acme");
        var ids = new List<string>();
        foreach (var amount in new[] { 120, 80, 300, 999 })
        {
            ids.Add((await agent.SubmitPayment(amount)).Str("approvalId"));
        }
        var page = await SignInAsync("alice");
        await page.WaitForURLAsync("**/queue/acme");
        await BrowserSession.Interactive(page);
        await Expect(page.GetByTestId("queue-row")).ToHaveCountAsync(4);

        // Each row's checkbox has its own accessible name (topic, env, submitter, id).
        foreach (var id in ids.Take(3))
        {
            await page.GetByRole(AriaRole.Checkbox, new() { Name = $"({id})" }).CheckAsync();
        }
        await Expect(page.GetByTestId("bulk-selected")).ToContainTextAsync("3 approvals selected");
        await page.GetByTestId("bulk-approve").ClickAsync();

        await Expect(page.GetByTestId("bulk-count")).ToHaveTextAsync("3");
        await Expect(page.GetByTestId("bulk-total")).ToHaveTextAsync("500");
        await Expect(page.GetByTestId("bulk-failing")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("bulk-confirm")).ToBeDisabledAsync();
        await page.GetByTestId("bulk-reason").FillAsync("vendor batch checked");
        await page.GetByTestId("bulk-confirm").ClickAsync();

        await Expect(page.GetByTestId("bulk-summary")).ToHaveTextAsync("3 approved");
        await Expect(page.Locator("[data-testid=bulk-result][data-result=approved]")).ToHaveCountAsync(3);
        await Screenshot(page, "bulk-results");
        foreach (var (id, state) in ids.Zip(new[] { "approved", "approved", "approved", "pending" }))
        {
            Assert.Equal(state, (await (await agent.GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state"));
        }

        await page.GetByTestId("bulk-done").ClickAsync();
        await Expect(page.GetByTestId("bulk-bar")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId("queue-row")).ToHaveCountAsync(1);
        await Expect(page.Locator($"[data-testid=queue-row][data-id='{ids[3]}']")).ToBeVisibleAsync();
    }

    private static async Task Screenshot(IPage page, string name)
    {
        var folder = Path.Combine(TestPaths.Repo, "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, name + ".png"), FullPage = true });
    }
}
