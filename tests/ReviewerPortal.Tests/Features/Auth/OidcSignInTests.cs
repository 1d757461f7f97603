using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>
/// Sign-in for companies, end to end against a real OpenID provider (OpenIddict in its own Kestrel host): the browser
/// (an HttpClient that follows redirects and keeps cookies) goes portal → provider login → portal callback, and the
/// portal knows the person as a local account with the mapped roles. Forged or foreign ID tokens are refused.
/// </summary>
public sealed class OidcSignInTests
{
    [Fact]
    public async Task A_company_account_signs_in_at_the_provider_and_gets_the_mapped_roles()
    {
        await using var provider = await TestOidcProvider.StartAsync();
        provider.User = Person("u-1001", "dana", "portal-admins", "acme-approvers");
        await using var app = await StartPortalAsync(provider);
        using var browser = Browser(out var cookies);

        var login = await browser.GetStringAsync(app.BaseUrl + "/account/login");
        Assert.Contains("Sign in with Test IdP", login);
        var landed = await browser.GetAsync(app.BaseUrl + "/account/oidc?returnUrl=" + Uri.EscapeDataString("/admin/acme"));

        Assert.Equal(HttpStatusCode.OK, landed.StatusCode);
        Assert.Equal("/admin/acme", landed.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Contains("data-testid=\"signed-in-user\"", await landed.Content.ReadAsStringAsync());
        Assert.Contains(cookies.GetCookies(new Uri(app.BaseUrl)), c => c.Name == "rp.auth");

        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var dana = await users.FindByLoginAsync("oidc", "u-1001");
        Assert.NotNull(dana);
        Assert.Equal("dana", dana.UserName);
        Assert.Equal(["admin", "reviewer"], (await users.GetRolesAsync(dana)).Order());
        var acme = await scope.ServiceProvider.GetRequiredService<TenantStore>().GetSettingsAsync("acme");
        Assert.Contains("dana", acme!.Approvers);
        Assert.Equal(1, await app.AuditCountAsync(null, "signed_in"));
        Assert.Equal(1, await app.AuditCountAsync(null, "account_created"));
        Assert.Equal(1, await app.AuditCountAsync(null, "roles_changed"));

        // The admin page answers as an admin's (not "your account cannot open this page").
        Assert.DoesNotContain("cannot open this page", await landed.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task The_next_sign_in_follows_the_provider_s_groups_and_is_audited()
    {
        await using var provider = await TestOidcProvider.StartAsync();
        provider.User = Person("u-2002", "erin", "portal-admins");
        await using var app = await StartPortalAsync(provider);
        using (var first = Browser(out _))
        {
            var signedIn = await first.GetAsync(app.BaseUrl + "/account/oidc");
            Assert.NotEqual("/account/login", signedIn.RequestMessage!.RequestUri!.AbsolutePath);
        }

        provider.User = Person("u-2002", "erin", "portal-oncall");
        using var second = Browser(out _);
        var landed = await second.GetAsync(app.BaseUrl + "/account/oidc?returnUrl=%2Fqueue%2Facme");

        Assert.Equal("/queue/acme", landed.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Equal(HttpStatusCode.OK, landed.StatusCode);
        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        Assert.Equal(["oncall"], await users.GetRolesAsync((await users.FindByNameAsync("erin"))!));
        Assert.Equal(2, await app.AuditCountAsync(null, "roles_changed"));
        Assert.Equal(2, await app.AuditCountAsync(null, "signed_in"));
    }

    [Theory]
    [InlineData(TestOidcProvider.Tampering.UnsignedIdToken)]
    [InlineData(TestOidcProvider.Tampering.IdTokenSignedWithAnotherKey)]
    [InlineData(TestOidcProvider.Tampering.IdTokenFromAnotherIssuer)]
    [InlineData(TestOidcProvider.Tampering.DiscoveryNamesAnotherIssuer)]
    public async Task A_forged_or_foreign_id_token_is_refused_and_audited(TestOidcProvider.Tampering tampering)
    {
        await using var provider = await TestOidcProvider.StartAsync();
        provider.User = Person("u-3003", "mallory", "portal-admins");
        provider.Tamper = tampering;
        await using var app = await StartPortalAsync(provider);
        using var browser = Browser(out var cookies);

        var landed = await browser.GetAsync(app.BaseUrl + "/account/oidc?returnUrl=%2Fadmin%2Facme");

        Assert.Equal("/account/login", landed.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.Contains("Sign-in with Test IdP did not succeed", System.Net.WebUtility.HtmlDecode(await landed.Content.ReadAsStringAsync()));
        Assert.DoesNotContain(cookies.GetCookies(new Uri(app.BaseUrl)), c => c.Name == "rp.auth");
        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        Assert.Null(await users.FindByNameAsync("mallory"));
        Assert.Null(await users.FindByLoginAsync("oidc", "u-3003"));
        Assert.Equal(1, await app.AuditCountAsync(null, "sign_in_failed"));
        Assert.Equal(0, await app.AuditCountAsync(null, "signed_in"));
    }

    [Fact]
    public async Task Another_identity_with_the_same_user_name_does_not_get_the_linked_account()
    {
        await using var provider = await TestOidcProvider.StartAsync();
        provider.User = Person("u-4004", "frank", "portal-admins");
        await using var app = await StartPortalAsync(provider);
        using (var first = Browser(out _))
        {
            Assert.NotEqual("/account/login", (await first.GetAsync(app.BaseUrl + "/account/oidc")).RequestMessage!.RequestUri!.AbsolutePath);
        }

        provider.User = Person("u-6666", "frank");
        using var impostor = Browser(out var cookies);
        var landed = await impostor.GetAsync(app.BaseUrl + "/account/oidc?returnUrl=%2Fadmin%2Facme");

        Assert.Equal("/account/login", landed.RequestMessage!.RequestUri!.AbsolutePath);
        Assert.DoesNotContain(cookies.GetCookies(new Uri(app.BaseUrl)), c => c.Name == "rp.auth");
        Assert.Equal(1, await app.AuditCountAsync(null, "sign_in_failed"));
        await using var scope = app.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        Assert.Null(await users.FindByLoginAsync("oidc", "u-6666"));
    }

    [Fact]
    public async Task A_provider_without_a_client_id_stops_the_start_naming_the_setting()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Authentication:Oidc:Authority"] = "https://login.example.com/",
        }));
        Assert.Contains("Authentication:Oidc:ClientId", error.ToString());
    }

    [Fact]
    public async Task With_local_accounts_off_the_page_shows_no_password_form_and_a_posted_one_is_refused()
    {
        await using var provider = await TestOidcProvider.StartAsync();
        await using var app = await StartPortalAsync(provider, new() { ["Authentication:LocalAccounts:Enabled"] = "false" });
        using var client = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions
        {
            AllowAutoRedirect = false, HandleCookies = true, BaseAddress = new Uri(app.BaseUrl),
        });

        var page = await client.GetStringAsync("/account/login");
        Assert.Contains("Sign in with Test IdP", page);
        Assert.DoesNotContain("Input.Password", page);

        var posted = await LoginForm.PostAsync(client, "alice", "demo-alice");
        Assert.False(LoginForm.SignedIn(posted));
        Assert.True((int)posted.StatusCode is >= 400 and < 500, posted.StatusCode.ToString());
        Assert.Equal(0, await app.AuditCountAsync(null, "signed_in"));
    }

    [Fact]
    public async Task Without_a_provider_the_page_offers_only_the_password_form()
    {
        await using var app = await TestApp.StartAsync();
        using var client = app.CreateClient();

        var page = await client.GetStringAsync("/account/login");

        Assert.DoesNotContain("Sign in with", page);
        Assert.Contains("Input.Password", page);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/account/oidc")).StatusCode);
    }

    private static async Task<TestApp> StartPortalAsync(TestOidcProvider provider, Dictionary<string, string?>? extra = null)
    {
        var settings = provider.PortalSettings();
        settings["Authentication:Oidc:RoleMappings:0:ClaimType"] = "groups";
        settings["Authentication:Oidc:RoleMappings:0:ClaimValue"] = "portal-admins";
        settings["Authentication:Oidc:RoleMappings:0:Role"] = "admin";
        settings["Authentication:Oidc:RoleMappings:1:ClaimType"] = "groups";
        settings["Authentication:Oidc:RoleMappings:1:ClaimValue"] = "acme-approvers";
        settings["Authentication:Oidc:RoleMappings:1:ApproverOf"] = "acme";
        settings["Authentication:Oidc:RoleMappings:2:ClaimType"] = "groups";
        settings["Authentication:Oidc:RoleMappings:2:ClaimValue"] = "portal-oncall";
        settings["Authentication:Oidc:RoleMappings:2:Role"] = "oncall";
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }
        var app = await TestApp.StartAsync(settings: settings, kestrel: true);
        provider.RedirectUris.Add(app.BaseUrl.TrimEnd('/') + "/signin-oidc");
        return app;
    }

    private static List<Claim> Person(string subject, string userName, params string[] groups) =>
    [
        new("sub", subject),
        new("preferred_username", userName),
        new("email", userName + "@corp.example"),
        .. groups.Select(g => new Claim("groups", g)),
    ];

    /// <summary>A browser: follows redirects across the two hosts and keeps their cookies.</summary>
    private static HttpClient Browser(out CookieContainer cookies)
    {
        cookies = new CookieContainer();
        return new HttpClient(new HttpClientHandler { CookieContainer = cookies, UseCookies = true, AllowAutoRedirect = true, MaxAutomaticRedirections = 20 });
    }
}
