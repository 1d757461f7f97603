using System.Net.Http.Json;
using System.Text;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// Every portal page, signed in as the person who uses it, on a phone (390 × 844, and 360 wide) and on a desktop
/// (1440 × 900): no sideways scrolling, the menu reaches every destination, the decision bar stays on screen, and
/// axe-core finds no WCAG 2.0/2.1/2.2 A/AA violation in the light or the dark colour scheme. Full-page screenshots of
/// each page and size land in the test output folder (TestResults/screenshots).
/// </summary>
public sealed class ResponsiveAccessibilityTests(ResponsiveAccessibilityTests.Portal portal, ITestOutputHelper output)
    : IClassFixture<ResponsiveAccessibilityTests.Portal>
{
    public const int PhoneWidth = 390, PhoneHeight = 844, NarrowWidth = 360, DesktopWidth = 1440, DesktopHeight = 900;

    private static readonly string[] WcagTags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

    /// <summary>The pages and who uses each: null signs nobody in.</summary>
    private static readonly Dictionary<string, (string? User, string Url)> Pages = new()
    {
        ["login"] = (null, "/account/login"),
        ["action-link"] = (null, "{link}"),
        ["queue"] = ("alice", "/queue"),
        ["queue-tenant"] = ("alice", "/queue/acme"),
        ["queue-bulk"] = ("alice", "/queue/acme"),
        ["approval"] = ("alice", "/approvals/{approval}"),
        ["cases"] = ("alice", "/cases/acme"),
        ["case"] = ("alice", "/cases/acme"),
        ["oncall"] = ("oscar", "/oncall"),
        ["audit"] = ("oscar", "/audit"),
        ["admin"] = ("ada", "/admin/acme"),
        ["account"] = ("alice", "/account"),
        ["forbidden"] = ("alice", "/admin/acme"),
        ["not-found"] = ("alice", "/no-such-page"),
    };

    public static TheoryData<string, string> PagesAndSizes()
    {
        var data = new TheoryData<string, string>();
        foreach (var page in Pages.Keys)
        {
            data.Add(page, "phone");
            data.Add(page, "desktop");
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(PagesAndSizes))]
    public async Task Page_fits_the_screen_and_has_no_accessibility_violation(string name, string size)
    {
        Skip.If(!BrowserSession.Installed, BrowserSession.NotInstalled);
        var (user, url) = Pages[name];
        var phone = size == "phone";
        var page = user is null ? await portal.Browser.NewPageAsync(portal.App.BaseUrl) : await portal.Browser.SignInAsync(portal.App.BaseUrl, user);
        await page.SetViewportSizeAsync(phone ? PhoneWidth : DesktopWidth, phone ? PhoneHeight : DesktopHeight);
        await page.GotoAsync(url.Replace("{approval}", portal.ApprovalId).Replace("{link}", portal.Link));
        await ReadyAsync(page, name);

        var problems = new List<string>();
        await CheckOverflowAsync(page, problems);
        if (phone)
        {
            if (name == "approval")
            {
                await CheckDecisionBarAsync(page, problems);
            }
            if (user is not null)
            {
                await CheckMenuAsync(page, user == "ada", problems);
            }
            await page.SetViewportSizeAsync(NarrowWidth, PhoneHeight);
            await CheckOverflowAsync(page, problems, $"at {NarrowWidth} px");
            await page.SetViewportSizeAsync(PhoneWidth, PhoneHeight);
        }

        foreach (var scheme in new[] { ColorScheme.Light, ColorScheme.Dark })
        {
            await page.EmulateMediaAsync(new PageEmulateMediaOptions { ColorScheme = scheme });
            await page.WaitForTimeoutAsync(100); // a repaint after the media change; nothing is asserted about time
            var result = await page.RunAxe(new AxeRunOptions { RunOnly = new RunOnlyOptions { Type = "tag", Values = [.. WcagTags] } });
            foreach (var violation in result.Violations)
            {
                problems.Add($"axe {scheme}: {violation.Id} ({violation.Impact}) {violation.Help}: " +
                    string.Join(" | ", violation.Nodes.Select(n => $"{n.Target} {n.Html} — {string.Join("; ", n.Any.Concat(n.All).Concat(n.None).Select(c => c.Message))}")));
            }
            var shot = Path.Combine(ScreenshotFolder, $"{name}-{size}-{scheme.ToString().ToLowerInvariant()}.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
            output.WriteLine($"screenshot: {shot}");
        }

        Assert.True(problems.Count == 0, $"{name} at {size}:\n" + string.Join("\n", problems));
    }

    [SkippableFact]
    public async Task Phone_menu_reaches_every_destination_and_signs_out_by_keyboard()
    {
        Skip.If(!BrowserSession.Installed, BrowserSession.NotInstalled);
        var page = await portal.Browser.SignInAsync(portal.App.BaseUrl, "ada");
        await page.SetViewportSizeAsync(PhoneWidth, PhoneHeight);
        await page.GotoAsync("/oncall");
        await BrowserSession.Interactive(page);

        await Expect(page.Locator("nav.rp-nav")).ToBeHiddenAsync();
        var destinations = new[] { ("Queue", "/queue/acme$"), ("Cases", "/cases"), ("On-call", "/oncall$"), ("Audit", "/audit$"), ("Admin", "/admin") };
        foreach (var (label, pattern) in destinations)
        {
            var toggle = page.GetByTestId("nav-menu-button");
            await toggle.FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            var link = page.GetByTestId("nav-menu").GetByRole(AriaRole.Link, new() { Name = label, Exact = true });
            await Expect(link).ToBeVisibleAsync();
            // Tab walks from the button into the menu, in order, until it reaches the link.
            for (var i = 0; i < 10 && !await link.EvaluateAsync<bool>("e => e === document.activeElement"); i++)
            {
                await page.Keyboard.PressAsync("Tab");
            }
            Assert.True(await link.EvaluateAsync<bool>("e => e === document.activeElement"), $"Tab does not reach {label}");
            if (label == "Queue")
            {
                var shot = Path.Combine(ScreenshotFolder, "menu-open-phone.png");
                await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot });
                output.WriteLine($"screenshot: {shot}");
            }
            var outline = await link.EvaluateAsync<string>("e => { const s = getComputedStyle(e); return s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.boxShadow; }");
            Assert.False(outline.StartsWith("none", StringComparison.Ordinal) && outline.EndsWith("none", StringComparison.Ordinal), $"{label} shows no keyboard focus: {outline}");
            await page.Keyboard.PressAsync("Enter");
            await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex(pattern));
            await BrowserSession.Interactive(page);
            // The router moves focus to the new page's heading once it has rendered: wait for it before the next walk
            // (not after /queue, which redirects to the first tenant's queue, the same page, before it has a heading).
            if (label != "Queue")
            {
                await page.WaitForFunctionAsync("() => document.activeElement && document.activeElement.tagName === 'H1'");
            }
            await Expect(page.GetByTestId("nav-menu")).ToBeHiddenAsync(); // the menu closes behind the navigation
        }

        await page.GetByTestId("nav-menu-button").FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        var signOut = page.GetByTestId("nav-menu").GetByRole(AriaRole.Button, new() { Name = "Sign out" });
        await Expect(signOut).ToBeVisibleAsync();
        await signOut.FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login"));
    }

    private static async Task ReadyAsync(IPage page, string name)
    {
        switch (name)
        {
            case "action-link":
                await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
                await Expect(page.GetByTestId("link-approve")).ToBeVisibleAsync();
                break;
            case "login" or "forbidden" or "not-found":
                await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
                break;
            case "case":
                await BrowserSession.Interactive(page);
                await page.Locator("[data-case] button").First.FocusAsync();
                await page.Keyboard.PressAsync("Enter"); // a case opens from the keyboard too
                await Expect(page.GetByTestId("case-detail")).ToBeVisibleAsync();
                break;
            case "queue" or "queue-tenant":
                await BrowserSession.Interactive(page);
                await Expect(page.GetByTestId("queue-row").First).ToBeVisibleAsync();
                break;
            case "queue-bulk":
                // Every row ticked and the approve preview open (two were submitted before the policy changed: flagged).
                await BrowserSession.Interactive(page);
                await Expect(page.GetByTestId("queue-row").First).ToBeVisibleAsync();
                foreach (var box in await page.GetByTestId("queue-pick").AllAsync())
                {
                    await box.CheckAsync();
                }
                await page.GetByTestId("bulk-approve").ClickAsync();
                await Expect(page.GetByTestId("bulk-preview-title")).ToBeVisibleAsync();
                break;
            case "account":
                await BrowserSession.Interactive(page);
                await Expect(page.GetByTestId("delegate-to")).ToBeVisibleAsync();
                break;
            case "approval":
                await BrowserSession.Interactive(page);
                await Expect(page.GetByTestId("approve")).ToBeVisibleAsync();
                break;
            default:
                await BrowserSession.Interactive(page);
                break;
        }
    }

    private static async Task CheckOverflowAsync(IPage page, List<string> problems, string? where = null)
    {
        var widths = await page.EvaluateAsync<int[]>("() => [document.documentElement.scrollWidth, window.innerWidth]");
        if (widths[0] > widths[1])
        {
            var culprits = await page.EvaluateAsync<string[]>("""
                () => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && e.getClientRects().length)
                    .slice(0, 6).map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '') + ' right=' + Math.round(e.getBoundingClientRect().right))
                """);
            problems.Add($"scrolls sideways{(where is null ? "" : " " + where)}: scrollWidth {widths[0]} > innerWidth {widths[1]} ({string.Join(", ", culprits)})");
        }
    }

    private static async Task CheckDecisionBarAsync(IPage page, List<string> problems)
    {
        foreach (var at in new[] { "top", "bottom" })
        {
            await page.EvaluateAsync(at == "top" ? "() => window.scrollTo(0, 0)" : "() => window.scrollTo(0, document.documentElement.scrollHeight)");
            await page.WaitForTimeoutAsync(100);
            foreach (var control in new[] { "reason", "approve", "reject", "request-changes" })
            {
                var inside = await page.GetByTestId(control).EvaluateAsync<bool>(
                    "e => { const r = e.getBoundingClientRect(); return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth; }");
                if (!inside)
                {
                    problems.Add($"decision bar: {control} is outside the viewport with the page scrolled to the {at}");
                }
            }
        }
        await page.EvaluateAsync("() => window.scrollTo(0, 0)");
    }

    private static async Task CheckMenuAsync(IPage page, bool admin, List<string> problems)
    {
        var toggle = page.GetByTestId("nav-menu-button");
        if (!await toggle.IsVisibleAsync())
        {
            problems.Add("menu: no visible menu button (nav-menu-button) on a phone");
            return;
        }
        await toggle.ClickAsync();
        var menu = page.GetByTestId("nav-menu");
        var wanted = new List<(AriaRole, string)> { (AriaRole.Link, "Queue"), (AriaRole.Link, "Cases"), (AriaRole.Link, "On-call"), (AriaRole.Link, "Audit"), (AriaRole.Button, "Sign out") };
        if (admin)
        {
            wanted.Add((AriaRole.Link, "Admin"));
        }
        foreach (var (role, label) in wanted)
        {
            var item = menu.GetByRole(role, new() { Name = label, Exact = true });
            if (await item.CountAsync() != 1 || !await item.IsVisibleAsync()
                || !await item.EvaluateAsync<bool>("e => { const r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth && r.top >= 0 && r.bottom <= window.innerHeight; }"))
            {
                problems.Add($"menu: {label} is not reachable on screen");
            }
        }
        await toggle.ClickAsync();
        await Expect(menu).ToBeHiddenAsync();
    }

    private static string ScreenshotFolder
    {
        get
        {
            var folder = Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots");
            Directory.CreateDirectory(folder);
            return folder;
        }
    }

    /// <summary>One app and one chromium for the class, with pending approvals in acme and an open case.</summary>
    public sealed class Portal : IAsyncLifetime
    {
        private TestApp? _app;
        private BrowserSession? _browser;

        public TestApp App => _app!;
        public BrowserSession Browser => _browser!;
        public string ApprovalId { get; private set; } = "";

        /// <summary>alice's approve link of <see cref="ApprovalId"/> (its confirmation page, with the policy's drift).</summary>
        public string Link { get; private set; } = "";

        public async Task InitializeAsync()
        {
            if (!BrowserSession.Installed)
            {
                return;
            }
            _app = await TestApp.StartAsync(kestrel: true, settings: BrowserSession.AppSettings());
            _browser = await BrowserSession.LaunchAsync();
            var agent = _app.Agent("acme");
            ApprovalId = (await agent.SubmitPayment(420)).Str("approvalId");
            await agent.SubmitPayment(9100);
            var opened = await agent.PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech GmbH", documents = new[] { "passport", "register_extract" } });
            Assert.True(opened.IsSuccessStatusCode, await opened.Content.ReadAsStringAsync());
            // A published policy with a change gives the approval page its policy diff, as reviewers see it.
            var published = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
                version: v1
                rules:
                  - id: require-approval-prod-finance
                    when: { topic: finance.payment.execute, env: production }
                    decision: require_human
                    ttl: 48h
                  - id: salary-changes
                    when: { topic: hr.salary.change }
                    decision: require_human
                default: deny
                """, Encoding.UTF8, "application/yaml"));
            Assert.True(published.IsSuccessStatusCode, await published.Content.ReadAsStringAsync());
            Link = await ActionLinkBrowserTests.LinkAsync(_app, ApprovalId, "alice");
            var routine = await agent.Submit(new
            {
                topic = "hr.salary.change",
                env = "production",
                priority = "normal",
                payload = new { employee = "E-1042", from = 61000, to = 64500, note = "annual review, long explanation of the change that a reviewer reads on a phone" },
            });
            Assert.Equal(System.Net.HttpStatusCode.Accepted, routine.StatusCode);
        }

        public async Task DisposeAsync()
        {
            if (_browser is not null)
            {
                await _browser.DisposeAsync();
            }
            if (_app is not null)
            {
                await _app.DisposeAsync();
            }
        }
    }
}
