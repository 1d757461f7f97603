using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// The portal at night: dark when the device is dark or the reviewer chose dark, readable (axe-core finds no colour
/// contrast failure), the choice kept on the account; times in the browser's own zone, already in the server render.
/// </summary>
public sealed partial class DarkThemeBrowserTests : PortalBrowserTest
{
    [SkippableFact]
    public async Task Main_pages_on_a_dark_device_are_dark_and_pass_colour_contrast_with_times_in_the_browsers_zone()
    {
        var app = App;
        var id = (await app.Agent("acme").SubmitPayment(4711)).Str("approvalId");
        var opened = await app.Agent("acme").PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech GmbH", documents = new[] { "passport" } });
        Assert.True(opened.IsSuccessStatusCode);

        // Before sign-in: the first page tells the server the device is dark; from the next page on, it renders dark.
        var anonymous = await (await Browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = app.BaseUrl, ViewportSize = new() { Width = 1440, Height = 900 }, ColorScheme = ColorScheme.Dark,
        })).NewPageAsync();
        await anonymous.GotoAsync("/account/login");
        await anonymous.ReloadAsync();
        await ExpectDarkAsync(anonymous);
        await NoContrastViolationAsync(anonymous, "/account/login");
        await Screenshot(anonymous, "dark-login");

        var alice = await SignInAsync("alice", ColorScheme.Dark, "Europe/Berlin");
        await CheckDarkAsync(alice, "/queue/acme", "queue-row", "dark-queue");
        await CheckDarkAsync(alice, $"/approvals/{id}", "decision-panel", "dark-approval");
        // The exact time names the browser's zone, on hover (title) and in the server-rendered page itself.
        Assert.Matches(ExactBerlin(), await alice.Locator("[data-testid=audit-trail] .rp-when").First.GetAttributeAsync("title") ?? "");
        // Keyboard focus shows the exact time too (the tooltip the time is described by).
        var when = alice.Locator("[data-testid=audit-trail] .rp-when").First;
        var tip = alice.Locator("[data-testid=audit-trail] .rp-when-tip").First;
        await Expect(tip).ToBeHiddenAsync();
        await when.FocusAsync();
        await alice.Keyboard.PressAsync("Shift+Tab");
        await alice.Keyboard.PressAsync("Tab");
        await Expect(tip).ToBeVisibleAsync();
        await Expect(tip).ToHaveTextAsync(ExactBerlin());
        await NoContrastViolationAsync(alice, "focused time");
        await Screenshot(alice, "dark-approval-time-focused");
        var prerendered = System.Net.WebUtility.HtmlDecode(await (await alice.Context.APIRequest.GetAsync($"/approvals/{id}")).TextAsync());
        Assert.Matches(ExactBerlin(), prerendered);
        Assert.DoesNotContain("+00:00", prerendered[prerendered.IndexOf("audit-trail", StringComparison.Ordinal)..]);
        await CheckDarkAsync(alice, "/oncall", "oncall-board", "dark-oncall");
        await CheckDarkAsync(alice, "/cases/acme", "cases", "dark-cases");

        var ada = await SignInAsync("ada", ColorScheme.Dark, "America/New_York");
        await CheckDarkAsync(ada, "/audit", "audit-table", "dark-audit");
        await CheckDarkAsync(ada, "/admin/acme", "notification-status", "dark-admin");
        Assert.Contains("America/New_York", await ada.Locator("[data-testid=policy-history] .rp-when").First.GetAttributeAsync("title") ?? "");
    }

    [SkippableFact]
    public async Task Theme_chosen_in_the_top_bar_applies_at_once_and_is_kept_for_the_account_in_a_new_browser()
    {
        var app = App;
        var id = (await app.Agent("acme").SubmitPayment(815)).Str("approvalId");

        var light = await SignInAsync("alice", ColorScheme.Light);
        await GoAsync(light, $"/approvals/{id}");
        await ExpectLightAsync(light);
        await ChooseThemeAsync(light, "dark");
        await ExpectDarkAsync(light);
        await NoContrastViolationAsync(light, "toggled-approval");
        await Screenshot(light, "dark-toggled-approval");
        await light.ReloadAsync();
        await ExpectDarkAsync(light);

        // A new browser (no cookies) on a light device: the account's choice wins.
        var other = await SignInAsync("alice", ColorScheme.Light);
        await ExpectDarkAsync(other);
        await ChooseThemeAsync(other, "light");
        await ExpectLightAsync(other);

        // Light chosen: a dark device does not change it; "as on this device" follows the device again.
        var darkDevice = await SignInAsync("alice", ColorScheme.Dark);
        await ExpectLightAsync(darkDevice);
        await ChooseThemeAsync(darkDevice, "system");
        await ExpectDarkAsync(darkDevice);

        // Another account keeps its own (none chosen: the device's).
        var bob = await SignInAsync("bob", ColorScheme.Light);
        await ExpectLightAsync(bob);
    }

    private async Task CheckDarkAsync(IPage page, string url, string testId, string screenshot)
    {
        await GoAsync(page, url);
        await Expect(page.GetByTestId(testId).First).ToBeVisibleAsync();
        await ExpectDarkAsync(page);
        await NoContrastViolationAsync(page, url);
        await Screenshot(page, screenshot);
    }

    private static async Task NoContrastViolationAsync(IPage page, string where)
    {
        var result = await page.RunAxe(new AxeRunOptions
        {
            RunOnly = new RunOnlyOptions { Type = "rule", Values = ["color-contrast"] },
        });
        var failures = result.Violations.SelectMany(v => v.Nodes.Select(n => $"{string.Join(" ", n.Target)}: {string.Join("; ", n.Any.Select(c => c.Message))} — {n.Html}")).ToList();
        Assert.True(failures.Count == 0, $"{where}: {failures.Count} colour contrast failure(s)\n" + string.Join("\n", failures));
    }

    // The relative luminance of the page background: under 0.05 is dark (#16181d is 0.009), over 0.8 light.
    private const string Luminance = """
        () => {
          const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/[\d.]+/g).map(Number);
          const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        }
        """;

    private static async Task ExpectDarkAsync(IPage page) =>
        await page.WaitForFunctionAsync($"() => ({Luminance})() < 0.05");

    private static async Task ExpectLightAsync(IPage page)
    {
        await BrowserSession.Interactive(page);
        await page.WaitForFunctionAsync($"() => ({Luminance})() > 0.8");
    }

    private static async Task ChooseThemeAsync(IPage page, string theme)
    {
        await page.Locator("[data-testid=theme-toggle] summary").ClickAsync();
        await page.GetByTestId($"theme-{theme}").ClickAsync();
        // The menu closes on a choice, and the choice is the one marked as in use.
        await Expect(page.Locator("details[data-testid=theme-toggle][open]")).ToHaveCountAsync(0);
        await Expect(page.GetByTestId($"theme-{theme}")).ToHaveAttributeAsync("aria-pressed", "true");
    }

    private async Task<IPage> SignInAsync(string user, ColorScheme scheme, string? timeZone = null)
    {
        var context = await Browser.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = App.BaseUrl,
            ViewportSize = new() { Width = 1440, Height = 900 },
            ColorScheme = scheme,
            TimezoneId = timeZone,
        });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/account/login");
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", $"demo-{user}");
        await page.ClickAsync("#sign-in");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync(user);
        await BrowserSession.Interactive(page);
        return page;
    }

    private static async Task GoAsync(IPage page, string url)
    {
        await page.GotoAsync(url);
        await BrowserSession.Interactive(page);
    }

    private static async Task Screenshot(IPage page, string name)
    {
        var folder = Path.Combine(TestPaths.Repo, "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, name + ".png"), FullPage = true });
    }

    [GeneratedRegex(@"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} Europe/Berlin \(UTC\+0[12]:00\)")]
    private static partial Regex ExactBerlin();
}
