using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>Debian's chromium driven by Playwright (never a downloaded browser), one per test class.</summary>
public sealed class BrowserSession : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";
    public const string NotInstalled = "chromium is not installed: apt-get install -y chromium";

    private readonly IPlaywright _playwright;

    private BrowserSession(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        Browser = browser;
    }

    public static bool Installed => File.Exists(ChromiumPath);

    /// <summary>
    /// Settings of an app a browser drives, with <paramref name="more"/>. Its pages sign in with the form, all from
    /// one loopback address and far more often than the sign-in limit lets one address (a class of phone and desktop
    /// pages ran into it in CI: "Too many requests" where the queue should be). That limit has its own tests
    /// (<c>RateLimitTests</c>); here it is set out of the way.
    /// </summary>
    public static Dictionary<string, string?> AppSettings(IDictionary<string, string?>? more = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["RateLimits:SignIn:PermitsPerSecond"] = "1000",
            ["RateLimits:SignIn:Burst"] = "10000",
        };
        foreach (var (key, value) in more ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return settings;
    }

    public IBrowser Browser { get; }

    public static async Task<BrowserSession> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
        return new BrowserSession(playwright, browser);
    }

    /// <summary>A page in a fresh context (its own cookies), a desktop-sized window unless told otherwise.</summary>
    public async Task<IPage> NewPageAsync(string? baseUrl, int width = 1440, int height = 900)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseUrl, ViewportSize = new() { Width = width, Height = height } });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    /// <summary>Signs a demo account in with the form and waits until the page runs over its circuit.</summary>
    public async Task<IPage> SignInAsync(string baseUrl, string user)
    {
        var page = await NewPageAsync(baseUrl);
        await page.GotoAsync(baseUrl.TrimEnd('/') + "/account/login");
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", $"demo-{user}");
        await page.ClickAsync("#sign-in");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync(user);
        await Interactive(page);
        return page;
    }

    /// <summary>Waits until the page runs over its circuit (prerendered HTML ignores input until then).</summary>
    public static Task Interactive(IPage page) => Expect(page.Locator("[data-interactive=yes]")).ToBeVisibleAsync();

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
