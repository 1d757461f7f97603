using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>Where sign-in sends the browser: only to this site, and never a 500 for an unusual address (security pass item 8).</summary>
public sealed partial class SignInReturnUrlTests
{
    [Theory]
    [InlineData("/queue/acme", "/queue/acme")]
    [InlineData("/audit?q=é", "/audit?q=%C3%A9")]
    [InlineData("/cases/ünïcode", "/cases/%C3%BCn%C3%AFcode")]
    [InlineData("//evil.example/x", "/")]
    [InlineData("/\\evil.example/x", "/")]
    [InlineData("https://evil.example/", "/")]
    public async Task Sign_in_returns_only_to_a_local_address_and_never_fails_on_one(string returnUrl, string expected)
    {
        await using var app = await TestApp.StartAsync();
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var form = await client.GetStringAsync("/account/login");
        var token = Antiforgery().Match(form).Groups[1].Value;

        var response = await client.PostAsync("/account/login?returnUrl=" + Uri.EscapeDataString(returnUrl), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = token,
            ["Input.UserName"] = "alice",
            ["Input.Password"] = "demo-alice",
        }));

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = new Uri(client.BaseAddress!, response.Headers.Location!);
        Assert.Equal(client.BaseAddress!.Authority, location.Authority);
        Assert.Equal(expected, location.PathAndQuery);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();
}
