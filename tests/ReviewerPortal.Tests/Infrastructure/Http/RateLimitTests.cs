using System.Net;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Http;

/// <summary>
/// Request rate limits per agent key, per account and per client address (security issue #17), on a frozen clock so
/// the bucket refills only when the test says so.
/// </summary>
public sealed class RateLimitTests
{
    private static Dictionary<string, string?> Limits(params (string Key, string Value)[] values) =>
        values.ToDictionary(v => "RateLimits:" + v.Key, v => (string?)v.Value);

    private static async Task AssertLimitedAsync(HttpResponseMessage response, string setting)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        var retryAfter = Assert.Single(response.Headers.GetValues("Retry-After"));
        Assert.InRange(int.Parse(retryAfter), 1, 3600);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Json();
        Assert.Equal(429, problem.GetProperty("status").GetInt32());
        Assert.Equal("rate_limited", problem.Str("code"));
        Assert.Contains(setting, problem.Str("detail"));
    }

    [Fact]
    public async Task A_key_over_its_limit_gets_429_with_retry_after_while_another_tenants_key_is_served()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T10:00:00Z"));
        await using var app = await TestApp.StartAsync(clock, settings: Limits(("PerKey:PermitsPerSecond", "1"), ("PerKey:Burst", "3")));
        var acme = app.Agent("acme");
        var globex = app.Agent("globex");

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await acme.GetAsync("/api/v1/approvals?limit=1")).StatusCode);
        }
        var limited = await acme.GetAsync("/api/v1/approvals?limit=1");
        var submitLimited = await acme.Submit(new { topic = "finance.payment.execute", env = "production", payload = new { amount = 1 } });

        await AssertLimitedAsync(limited, "RateLimits:PerKey");
        await AssertLimitedAsync(submitLimited, "RateLimits:PerKey");
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
        // The other tenant's key has its own bucket: served at the same moment.
        Assert.Equal(HttpStatusCode.OK, (await globex.GetAsync("/api/v1/approvals?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await globex.Submit(new { topic = "finance.payment.execute", env = "production", priority = "high", payload = new { amount = 1 } })).StatusCode);

        clock.Advance(TimeSpan.FromSeconds(1)); // one permit back
        Assert.Equal(HttpStatusCode.OK, (await acme.GetAsync("/api/v1/approvals?limit=1")).StatusCode);
        await AssertLimitedAsync(await acme.GetAsync("/api/v1/approvals?limit=1"), "RateLimits:PerKey");
    }

    [Fact]
    public async Task An_account_is_limited_by_name_and_other_accounts_are_not()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T10:00:00Z"));
        await using var app = await TestApp.StartAsync(clock, settings: Limits(("PerAccount:PermitsPerSecond", "1"), ("PerAccount:Burst", "2")));
        var alice = app.Account("alice");

        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/api/v1/approvals?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await alice.GetAsync("/api/v1/approvals?limit=1")).StatusCode);

        await AssertLimitedAsync(await alice.GetAsync("/api/v1/approvals?limit=1"), "RateLimits:PerAccount");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("bob").GetAsync("/api/v1/approvals?limit=1")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.Agent("acme").GetAsync("/api/v1/approvals?limit=1")).StatusCode);
    }

    [Fact]
    public async Task Sign_in_posts_from_one_address_are_limited()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T10:00:00Z"));
        await using var app = await TestApp.StartAsync(clock, kestrel: true, settings: Limits(("SignIn:PermitsPerSecond", "0.1"), ("SignIn:Burst", "3")));
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        Task<HttpResponseMessage> PostAsync() => http.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["Input.UserName"] = "nobody",
            ["Input.Password"] = "wrong-password",
        }));

        for (var i = 0; i < 3; i++)
        {
            Assert.NotEqual(HttpStatusCode.TooManyRequests, (await PostAsync()).StatusCode);
        }
        var limited = await PostAsync();

        Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
        Assert.InRange(int.Parse(Assert.Single(limited.Headers.GetValues("Retry-After"))), 1, 10);
        await AssertLimitedAsync(limited, "RateLimits:SignIn");
        // A browser (Accept: text/html) is told in words, not JSON.
        using var browserPost = new HttpRequestMessage(HttpMethod.Post, "/account/login") { Content = new FormUrlEncodedContent([]) };
        browserPost.Headers.Accept.ParseAdd("text/html,application/xhtml+xml,*/*;q=0.8");
        var page = await http.SendAsync(browserPost);
        Assert.Equal(HttpStatusCode.TooManyRequests, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var words = await page.Content.ReadAsStringAsync();
        Assert.Contains("Too many requests", words);
        var wait = int.Parse(Assert.Single(page.Headers.GetValues("Retry-After")));
        Assert.Contains(wait == 1 ? "Wait a second, then" : $"Wait {wait} seconds, then", words);
        // Reading the sign-in page is not a sign-in attempt, and the API's callers have their own buckets.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/account/login")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.Agent("acme").GetAsync("/api/v1/approvals?limit=1")).StatusCode);
    }

    [Fact]
    public async Task By_default_a_team_behind_one_office_address_signs_in_at_once_then_one_a_second()
    {
        // Thirty people behind one NAT address at nine o'clock. Wrong passwords are slowed by Auth:SignIn's failure
        // counts per address and name; this bucket only guards against a flood of posts.
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T09:00:00Z"));
        await using var app = await TestApp.StartAsync(clock, kestrel: true);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        Task<HttpResponseMessage> PostAsync(int i) => http.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["Input.UserName"] = $"person{i}",
            ["Input.Password"] = "a-password",
        }));

        for (var i = 0; i < 30; i++)
        {
            Assert.NotEqual(HttpStatusCode.TooManyRequests, (await PostAsync(i)).StatusCode);
        }
        await AssertLimitedAsync(await PostAsync(30), "RateLimits:SignIn");
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.NotEqual(HttpStatusCode.TooManyRequests, (await PostAsync(31)).StatusCode);
        await AssertLimitedAsync(await PostAsync(32), "RateLimits:SignIn");
    }

    [Fact]
    public async Task Anonymous_requests_are_limited_per_address_and_health_probes_are_not()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T10:00:00Z"));
        await using var app = await TestApp.StartAsync(clock, settings: Limits(("PerAddress:PermitsPerSecond", "1"), ("PerAddress:Burst", "2")));
        using var anonymous = app.CreateClient();
        using var wrongToken = app.WithToken("not-a-key");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/v1/approvals")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrongToken.GetAsync("/api/v1/approvals")).StatusCode);

        // A guessed token counts against its address, like no token.
        await AssertLimitedAsync(await wrongToken.GetAsync("/api/v1/approvals"), "RateLimits:PerAddress");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/healthz")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await app.Agent("acme").GetAsync("/api/v1/approvals?limit=1")).StatusCode);
    }
}
