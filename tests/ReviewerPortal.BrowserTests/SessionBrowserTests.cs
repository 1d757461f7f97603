using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>An open portal page does not outlive its account's sign-out: the circuit checks the security stamp too.</summary>
public sealed class SessionBrowserTests : IAsyncLifetime
{
    private const string Chromium = "/usr/bin/chromium";
    private TestApp? _app;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async Task InitializeAsync()
    {
        if (!File.Exists(Chromium))
        {
            return;
        }
        _app = await TestApp.StartAsync(kestrel: true, settings: new Dictionary<string, string?> { ["Auth:SecurityStampValidationInterval"] = "00:10:00" });
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
        });
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }
        _playwright?.Dispose();
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private async Task<IPage> SignInAsync(string user)
    {
        Skip.If(_app is null, "chromium is not installed: apt-get install -y chromium");
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions { BaseURL = _app!.BaseUrl });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/account/login");
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", $"demo-{user}");
        await page.ClickAsync("#sign-in");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync(user);
        await Expect(page.Locator("[data-interactive=yes]")).ToBeVisibleAsync();
        return page;
    }

    [SkippableFact]
    public async Task Signing_out_on_one_device_ends_the_open_page_on_another()
    {
        var phone = await SignInAsync("alice");
        var laptop = await SignInAsync("alice");
        await phone.WaitForURLAsync("**/queue/acme");

        await laptop.Locator("form[action='account/logout'] button").ClickAsync();
        await laptop.WaitForURLAsync("**/account/login**");

        // No reload on the phone: its live page hears of the sign-out over Redis (long before the 10-minute stamp check)
        // and goes to sign-in within seconds.
        await phone.WaitForURLAsync("**/account/login**", new PageWaitForURLOptions { Timeout = 5_000 });
        await Expect(phone.GetByTestId("signed-in-user")).ToHaveCountAsync(0);
    }
}
