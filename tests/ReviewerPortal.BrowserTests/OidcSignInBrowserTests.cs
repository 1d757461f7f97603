using System.Security.Claims;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// "Sign in with &lt;provider&gt;" in Debian's chromium: the portal and a real OpenID provider (OpenIddict on its own
/// loopback port), the browser going portal → provider → portal, and a refused (forged) answer landing back on the
/// sign-in page with a message.
/// </summary>
public sealed class OidcSignInBrowserTests : IAsyncLifetime
{
    private TestOidcProvider? _provider;
    private TestApp? _app;
    private BrowserSession? _browser;

    public async Task InitializeAsync()
    {
        if (!BrowserSession.Installed)
        {
            return;
        }
        _provider = await TestOidcProvider.StartAsync();
        var settings = _provider.PortalSettings("Corp SSO");
        settings["Authentication:Oidc:RoleMappings:0:ClaimType"] = "groups";
        settings["Authentication:Oidc:RoleMappings:0:ClaimValue"] = "acme-approvers";
        settings["Authentication:Oidc:RoleMappings:0:ApproverOf"] = "acme";
        _app = await TestApp.StartAsync(settings: BrowserSession.AppSettings(settings), kestrel: true);
        _provider.RedirectUris.Add(_app.BaseUrl.TrimEnd('/') + "/signin-oidc");
        _browser = await BrowserSession.LaunchAsync();
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
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
    }

    private async Task<IPage> NewPageAsync()
    {
        Skip.If(_app is null, BrowserSession.NotInstalled);
        return await _browser!.NewPageAsync(_app!.BaseUrl);
    }

    [SkippableFact]
    public async Task A_company_account_signs_in_with_the_provider_and_lands_on_its_queue()
    {
        var page = await NewPageAsync();
        _provider!.User = [new("sub", "corp-7"), new("preferred_username", "hana"), new("groups", "acme-approvers")];

        await page.GotoAsync("/account/login?returnUrl=%2Fqueue%2Facme");
        await page.GetByText("Sign in with Corp SSO").ClickAsync();

        await page.WaitForURLAsync("**/queue/acme");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync("hana");
    }

    [SkippableFact]
    public async Task A_forged_id_token_lands_back_on_the_sign_in_page_with_a_message()
    {
        var page = await NewPageAsync();
        _provider!.User = [new("sub", "corp-8"), new("preferred_username", "ivan")];
        _provider.Tamper = TestOidcProvider.Tampering.IdTokenSignedWithAnotherKey;

        await page.GotoAsync("/account/login");
        await page.GetByText("Sign in with Corp SSO").ClickAsync();

        await page.WaitForURLAsync("**/account/login?error=oidc");
        await Expect(page.GetByTestId("login-error")).ToContainTextAsync("Sign-in with Corp SSO did not succeed");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveCountAsync(0);
    }
}
