using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>An open portal page does not outlive its account's sign-out: the circuit checks the security stamp too.</summary>
public sealed class SessionBrowserTests : PortalBrowserTest
{
    protected override Task<TestApp> StartAppAsync() =>
        TestApp.StartAsync(kestrel: true, settings: BrowserSession.AppSettings(new Dictionary<string, string?> { ["Auth:SecurityStampValidationInterval"] = "00:10:00" }));

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
