using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Http;

/// <summary>
/// Behind a reverse proxy every request comes from the proxy's address. Per-address rate limits and sign-in throttling
/// must see the client instead, but only where the operator says which proxies to believe: anybody can send an
/// <c>X-Forwarded-For</c> header.
/// </summary>
public sealed class ForwardedHeadersTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-12-03T10:00:00Z");

    private static Dictionary<string, string?> Settings(params (string Key, string Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["RateLimits:PerAddress:PermitsPerSecond"] = "1",
            ["RateLimits:PerAddress:Burst"] = "2",
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }
        return settings;
    }

    private static Task<HttpResponseMessage> AnonymousAsync(HttpClient client, string from, string? forwardedFor, string? proto = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/approvals");
        request.Headers.Add(ClientAddresses.Header, from);
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }
        if (proto is not null)
        {
            request.Headers.Add("X-Forwarded-Proto", proto);
        }
        return client.SendAsync(request);
    }

    [Fact]
    public async Task Without_trusted_proxies_a_forged_X_Forwarded_For_does_not_buy_a_fresh_bucket_even_from_loopback()
    {
        await using var app = await TestApp.StartAsync(new FakeTimeProvider(Start), settings: Settings(), services: ClientAddresses.Add);
        using var client = app.CreateClient();

        // ASP.NET Core's own defaults believe loopback proxies; the product believes nobody until told.
        foreach (var from in new[] { "127.0.0.1", "203.0.113.9" })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, from, "198.51.100.1")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, from, "198.51.100.2")).StatusCode);
            Assert.Equal(HttpStatusCode.TooManyRequests, (await AnonymousAsync(client, from, "198.51.100.3")).StatusCode);
        }
    }

    [Fact]
    public async Task Behind_a_trusted_proxy_each_client_has_its_own_bucket_and_a_forged_prefix_is_ignored()
    {
        await using var app = await TestApp.StartAsync(new FakeTimeProvider(Start),
            settings: Settings(("ReverseProxy:TrustedProxies:0", "10.0.0.0/8"), ("ReverseProxy:TrustedProxies:1", "192.0.2.10")),
            services: ClientAddresses.Add);
        using var client = app.CreateClient();

        // Client one uses up its bucket through the proxy.
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "10.1.2.3", "198.51.100.1")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "10.1.2.3", "198.51.100.1")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await AnonymousAsync(client, "10.1.2.3", "198.51.100.1")).StatusCode);

        // Client two, through the same proxy, is served; and through the second proxy, after a hop through the first.
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "10.1.2.3", "198.51.100.2")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "192.0.2.10", "198.51.100.2, 10.9.9.9")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await AnonymousAsync(client, "192.0.2.10", "198.51.100.2, 10.9.9.9")).StatusCode);

        // Client one cannot escape by writing another address in front: the proxy appends the real one, and only the
        // hops the operator trusts are peeled off from the right.
        Assert.Equal(HttpStatusCode.TooManyRequests, (await AnonymousAsync(client, "10.1.2.3", "198.51.100.77, 198.51.100.1")).StatusCode);

        // A proxy the operator did not name is not believed.
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "203.0.113.50", "198.51.100.1")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await AnonymousAsync(client, "203.0.113.50", "198.51.100.1")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await AnonymousAsync(client, "203.0.113.50", "198.51.100.99")).StatusCode);
    }

    [Fact]
    public async Task Sign_in_behind_a_trusted_tls_proxy_gets_a_secure_cookie_and_an_untrusted_header_does_not()
    {
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?> { ["ReverseProxy:TrustedProxies:0"] = "10.0.0.1" },
            services: ClientAddresses.Add);

        async Task<string> SignInCookieAsync(string from)
        {
            using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
            var page = await client.GetStringAsync("/account/login");
            var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/account/login")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["_handler"] = "login",
                    ["__RequestVerificationToken"] = token,
                    ["Input.UserName"] = "alice",
                    ["Input.Password"] = "demo-alice",
                }),
            };
            request.Headers.Add(ClientAddresses.Header, from);
            request.Headers.Add("X-Forwarded-For", "198.51.100.5");
            request.Headers.Add("X-Forwarded-Proto", "https");
            var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            return Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("rp.auth=", StringComparison.Ordinal));
        }

        Assert.Contains("secure", await SignInCookieAsync("10.0.0.1"), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("secure", await SignInCookieAsync("203.0.113.50"), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_proxy_entry_that_is_no_address_stops_the_start_naming_it()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(
            settings: new Dictionary<string, string?> { ["ReverseProxy:TrustedProxies:0"] = "10.0.0.0/8", ["ReverseProxy:TrustedProxies:1"] = "proxy.internal" }));
        Assert.Contains("ReverseProxy:TrustedProxies:1 'proxy.internal'", failure.ToString());
    }

    [Fact]
    public async Task Behind_a_proxy_on_the_same_host_metrics_are_not_anonymous_for_the_internet()
    {
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?> { ["ReverseProxy:TrustedProxies:0"] = "127.0.0.1" }, services: ClientAddresses.Add);
        using var client = app.CreateClient();

        Task<HttpResponseMessage> ScrapeAsync(string? forwardedFor)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
            request.Headers.Add(ClientAddresses.Header, "127.0.0.1");
            if (forwardedFor is not null)
            {
                request.Headers.Add("X-Forwarded-For", forwardedFor);
            }
            return client.SendAsync(request);
        }

        // A local Prometheus still scrapes; a visitor the local proxy forwards is not loopback.
        Assert.Equal(HttpStatusCode.OK, (await ScrapeAsync(null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await ScrapeAsync("203.0.113.9")).StatusCode);
    }
}
