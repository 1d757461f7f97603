using System.Net;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>
/// Portal sessions: cookies a script cannot read, not sent cross-site, Secure over HTTPS; a sign-out, password or role
/// change ends every session of the account (security stamp, checked every minute); an idle session ends.
/// </summary>
public sealed class SessionTests
{
    [Fact]
    public async Task Session_and_antiforgery_cookies_are_HttpOnly_SameSite_and_Secure_over_https()
    {
        await using var app = await TestApp.StartAsync();
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions
        {
            AllowAutoRedirect = false, HandleCookies = true, BaseAddress = new Uri("https://localhost"),
        });

        var page = await client.GetAsync("/account/login");
        var antiforgery = Cookie(page, ".AspNetCore.Antiforgery");
        var signedIn = await LoginForm.PostAsync(client, "alice", "demo-alice");
        var session = Cookie(signedIn, "rp.auth");

        foreach (var cookie in new[] { antiforgery, session })
        {
            Assert.Contains("httponly", cookie);
            Assert.Contains("secure", cookie);
            Assert.Matches("samesite=(lax|strict)", cookie);
        }
    }

    [Fact]
    public async Task Signing_out_ends_every_session_of_the_account()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock);
        using var laptop = Browser(app);
        using var phone = Browser(app);
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(laptop, "alice", "demo-alice")));
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(phone, "alice", "demo-alice")));
        Assert.Equal(HttpStatusCode.OK, (await phone.GetAsync("/queue/acme")).StatusCode);

        var logout = await laptop.PostAsync("/account/logout", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = await TokenAsync(laptop),
        }));
        Assert.Equal(HttpStatusCode.Redirect, logout.StatusCode);
        clock.Advance(TimeSpan.FromMinutes(2)); // past the stamp check interval

        AssertSentToLogin(await phone.GetAsync("/queue/acme"));
        Assert.Equal(1, await app.AuditCountAsync(null, "signed_out"));
    }

    [Fact]
    public async Task A_role_change_ends_the_sessions_of_that_account()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock);
        using var bob = Browser(app);
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(bob, "bob", "demo-bob")));
        Assert.Equal(HttpStatusCode.OK, (await bob.GetAsync("/queue/acme")).StatusCode);

        await using (var scope = app.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
            var user = (await users.FindByNameAsync("bob"))!;
            Assert.True((await users.RemoveFromRoleAsync(user, "reviewer")).Succeeded);
        }
        clock.Advance(TimeSpan.FromMinutes(2));

        AssertSentToLogin(await bob.GetAsync("/queue/acme"));
    }

    [Fact]
    public async Task A_password_change_ends_the_sessions_of_that_account()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock);
        using var carol = Browser(app);
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(carol, "carol", "demo-carol")));

        await using (var scope = app.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
            var user = (await users.FindByNameAsync("carol"))!;
            Assert.True((await users.ChangePasswordAsync(user, "demo-carol", "a-new-long-password")).Succeeded);
        }
        clock.Advance(TimeSpan.FromMinutes(2));

        AssertSentToLogin(await carol.GetAsync("/queue/acme"));
    }

    [Fact]
    public async Task A_session_idle_for_longer_than_the_idle_timeout_is_over_and_an_active_one_goes_on()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock, settings: new Dictionary<string, string?> { ["Auth:IdleTimeout"] = "00:30:00" });
        using var active = Browser(app);
        using var idle = Browser(app);
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(active, "alice", "demo-alice")));
        Assert.True(LoginForm.SignedIn(await LoginForm.PostAsync(idle, "gina", "demo-gina")));

        for (var i = 0; i < 4; i++)
        {
            clock.Advance(TimeSpan.FromMinutes(20));
            Assert.Equal(HttpStatusCode.OK, (await active.GetAsync("/queue/acme")).StatusCode);
        }

        AssertSentToLogin(await idle.GetAsync("/queue/acme"));
    }

    private static void AssertSentToLogin(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/account/login", response.Headers.Location!.IsAbsoluteUri ? response.Headers.Location.PathAndQuery : response.Headers.Location.OriginalString);
    }

    private static async Task<string> TokenAsync(HttpClient client)
    {
        var page = await client.GetStringAsync("/account/login");
        return System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
    }

    private static string Cookie(HttpResponseMessage response, string name) =>
        response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(name, StringComparison.Ordinal)).ToLowerInvariant();

    private static HttpClient Browser(TestApp app) =>
        app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
}
