using System.Text.Json;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>Issue 16 in Debian's chromium: a reviewer fixes the amount of a payment and approves the edited job; the agent runs the edit.</summary>
public sealed class EditAndApproveBrowserTests : PortalBrowserTest
{
    [SkippableFact]
    public async Task A_reviewer_edits_a_field_and_approves_and_the_agent_reads_the_edited_payload()
    {
        var id = (await App.Agent("acme").SubmitPayment(420)).Str("approvalId");
        var page = await SignInAsync("alice");

        await page.GotoAsync($"{App.BaseUrl}/approvals/{id}");
        await BrowserSession.Interactive(page);
        await page.GetByTestId("edit-open").ClickAsync();
        var editor = page.GetByTestId("edit-payload");
        await Expect(editor).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("\"amount\": 420"));
        var json = await editor.InputValueAsync();
        await editor.FillAsync(json.Replace("\"amount\": 420", "\"amount\": 400"));
        await page.GetByTestId("reason").FillAsync("amount per the signed contract");
        await page.GetByTestId("edit-approve").ClickAsync();

        await Expect(page.GetByTestId("approval-state")).ToContainTextAsync("approved");
        await Expect(page.GetByTestId("edited")).ToContainTextAsync("edited by alice");
        await Expect(page.GetByTestId("version-diff")).ToContainTextAsync("400");
        var approval = await (await App.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.True(approval.GetProperty("edited").GetBoolean());
        Assert.Equal(2, approval.GetProperty("version").GetInt32());
        Assert.Equal(400, approval.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.Equal(JsonValueKind.String, approval.GetProperty("jobHash").ValueKind);
        var folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, "edit-and-approve.png"), FullPage = true });
    }

    [SkippableFact]
    public async Task Both_forms_open_fit_a_phone_and_pass_axe_in_light_and_dark()
    {
        var id = (await App.Agent("acme").SubmitPayment(421)).Str("approvalId");
        var page = await SignInAsync("alice");
        await page.SetViewportSizeAsync(ResponsiveAccessibilityTests.PhoneWidth, ResponsiveAccessibilityTests.PhoneHeight);
        var problems = new List<string>();
        foreach (var mode in new[] { "edit-open", "always-open" })
        {
            // Each form on a freshly loaded page in the light scheme, then the dark one (as ResponsiveAccessibilityTests does).
            await page.EmulateMediaAsync(new PageEmulateMediaOptions { ColorScheme = ColorScheme.Light });
            await page.GotoAsync($"{App.BaseUrl}/approvals/{id}");
            await BrowserSession.Interactive(page);
            await page.GetByTestId(mode).ClickAsync();
            await Expect(page.GetByTestId(mode == "edit-open" ? "edit-form" : "always-form")).ToBeVisibleAsync();
            var overflow = await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth - window.innerWidth");
            if (overflow > 0)
            {
                problems.Add($"{mode}: the page is {overflow} px wider than the screen");
            }
            foreach (var scheme in new[] { ColorScheme.Light, ColorScheme.Dark })
            {
                await page.EmulateMediaAsync(new PageEmulateMediaOptions { ColorScheme = scheme });
                await page.WaitForTimeoutAsync(100); // a repaint after the media change; nothing is asserted about time
                var result = await page.RunAxe(new AxeRunOptions { RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } });
                problems.AddRange(result.Violations.Select(v => $"{mode} {scheme}: {v.Id} {v.Help}: {string.Join(" | ", v.Nodes.Select(n => n.Html))}"));
            }
        }

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }
}
