using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Http;

/// <summary>Security headers on every answer, a strict Content-Security-Policy on pages, no Server banner (security issue #17).</summary>
public sealed class SecurityHeadersTests
{
    private static void AssertEveryResponseHeaders(HttpResponseMessage response)
    {
        Assert.Equal("nosniff", Assert.Single(response.Headers.GetValues("X-Content-Type-Options")));
        Assert.Contains(Assert.Single(response.Headers.GetValues("Referrer-Policy")), new[] { "strict-origin-when-cross-origin", "no-referrer" });
        var permissions = Assert.Single(response.Headers.GetValues("Permissions-Policy"));
        Assert.Contains("camera=()", permissions);
        Assert.Contains("microphone=()", permissions);
        Assert.Contains("geolocation=()", permissions);
    }

    [Fact]
    public async Task Api_answers_and_problems_carry_the_headers()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");

        foreach (var response in new[]
                 {
                     await agent.GetAsync("/api/v1/approvals?limit=1"),
                     await agent.GetAsync("/api/v1/approvals/apr_nope"),
                     await app.CreateClient().GetAsync("/healthz"),
                     await app.CreateClient().GetAsync("/api/v1/approvals"),
                 })
        {
            AssertEveryResponseHeaders(response);
        }
    }

    [Fact]
    public async Task Pages_carry_a_strict_content_security_policy()
    {
        await using var app = await TestApp.StartAsync();
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        var response = await client.GetAsync("/account/login");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/html", response.Content.Headers.ContentType?.MediaType);
        AssertEveryResponseHeaders(response);
        var csp = Assert.Single(response.Headers.GetValues("Content-Security-Policy"));
        var directives = csp.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(d => d.Split(' ')[0], d => d);
        Assert.Equal("default-src 'self'", directives["default-src"]);
        Assert.Equal("script-src 'self'", directives["script-src"]);
        Assert.Equal("frame-ancestors 'none'", directives["frame-ancestors"]);
        Assert.Equal("object-src 'none'", directives["object-src"]);
        Assert.Equal("base-uri 'self'", directives["base-uri"]);
        Assert.Equal("form-action 'self'", directives["form-action"]);
        Assert.Equal("connect-src 'self'", directives["connect-src"]);
        Assert.DoesNotContain("unsafe-eval", csp);
        // Inline script appears nowhere in the page: the policy would block it.
        Assert.DoesNotContain("<script>", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Kestrel_announces_no_server()
    {
        await using var app = await TestApp.StartAsync(kestrel: true);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

        var response = await http.GetAsync("/healthz");

        Assert.True(response.IsSuccessStatusCode);
        Assert.False(response.Headers.Contains("Server"), "Server: " + string.Join(",", response.Headers.TryGetValues("Server", out var v) ? v : []));
        AssertEveryResponseHeaders(response);
    }

    [Fact]
    public async Task Https_answers_outside_development_carry_hsts()
    {
        await using var app = await TestApp.StartAsync();
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri("https://portal.example/"), AllowAutoRedirect = false });

        var response = await client.GetAsync("/account/login");

        Assert.Contains("max-age=", Assert.Single(response.Headers.GetValues("Strict-Transport-Security")));
    }
}
