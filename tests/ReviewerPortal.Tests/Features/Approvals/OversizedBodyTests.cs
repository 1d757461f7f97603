using System.Net;
using System.Net.Http.Headers;
using System.Text;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// Bodies past their route's limit (submit: Approvals:MaxSubmitBytes, 1 MiB; other JSON routes:
/// RequestLimits:MaxJsonBytes, 64 KiB) or nested past RequestLimits:MaxJsonDepth are refused with a 400 naming the
/// limit, without reading them whole, however they are sent; the app stays healthy (security pass item 8, issue #17).
/// </summary>
public sealed class OversizedBodyTests
{
    [Fact]
    public async Task A_chunked_body_of_31_MB_is_a_400_naming_the_body_and_changes_nothing()
    {
        await using var app = await TestApp.StartAsync(kestrel: true); // Kestrel's own limits in play, as in production
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var huge = new byte[31 * 1024 * 1024];
        Array.Fill(huge, (byte)' ');
        huge[0] = (byte)'{';
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/jobs")
        {
            // A stream of unknown length: sent chunked, with no Content-Length to refuse it by.
            Content = new StreamContent(new NonSeekable(huge)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "demo-acme-agent");

        var response = await http.SendAsync(request); // answered before the client has sent it all

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("body", out _));
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static string Submission(string payload) =>
        $$"""{"topic":"finance.payment.execute","env":"production","priority":"high","payload":{{payload}}}""";

    private static async Task AssertRefusedNamingAsync(HttpResponseMessage response, string limit)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = (await response.Json()).GetProperty("errors");
        Assert.True(errors.TryGetProperty("body", out var body), errors.ToString());
        Assert.Contains(limit, body[0].GetString());
    }

    [Fact]
    public async Task A_submit_under_the_submit_limit_is_accepted_and_one_over_it_is_a_400_naming_the_setting()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var text = new string('x', 900 * 1024);

        var under = await agent.PostAsync("/api/v1/jobs", Json(Submission($$"""{"invoice":"INV-1","note":"{{text}}"}""")));
        var over = await agent.PostAsync("/api/v1/jobs", Json(Submission($$"""{"invoice":"INV-2","note":"{{text}}{{text[..(200 * 1024)]}}"}""")));

        Assert.Equal(HttpStatusCode.Accepted, under.StatusCode);
        await AssertRefusedNamingAsync(over, "Approvals:MaxSubmitBytes");
        Assert.Equal(1, await app.AuditCountAsync(null, "submitted"));
    }

    [Fact]
    public async Task The_submit_limit_is_a_setting()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Approvals:MaxSubmitBytes"] = "4096" });

        var response = await app.Agent("acme").PostAsync("/api/v1/jobs", Json(Submission($$"""{"note":"{{new string('x', 5000)}}"}""")));

        await AssertRefusedNamingAsync(response, "Approvals:MaxSubmitBytes");
        Assert.Contains("4 KiB", (await response.Json()).GetProperty("errors").GetProperty("body")[0].GetString());
    }

    [Fact]
    public async Task Other_json_routes_take_smaller_bodies()
    {
        await using var app = await TestApp.StartAsync();
        var id = (await app.Agent("acme").SubmitPayment(3)).Str("approvalId");

        // 100 KiB of valid JSON (padding between tokens) for a decision that needs a few bytes.
        var response = await app.Account("alice").PostAsync($"/api/v1/approvals/{id}/approve",
            Json("{\"reason\":\"fine\"" + new string(' ', 100 * 1024) + "}"));

        await AssertRefusedNamingAsync(response, "RequestLimits:MaxJsonBytes");
        Assert.Equal(0, await app.AuditCountAsync(id, "approved"));
    }

    [Fact]
    public async Task A_payload_nested_64_deep_is_a_400_naming_the_depth_limit_and_the_app_stays_healthy()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 64)) + "1" + new string('}', 64);

        var response = await agent.PostAsync("/api/v1/jobs", Json(Submission(deep)));

        await AssertRefusedNamingAsync(response, "RequestLimits:MaxJsonDepth");
        Assert.Contains("32", (await response.Json()).GetProperty("errors").GetProperty("body")[0].GetString());
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
        // Nesting within the limit is an ordinary payload.
        var shallow = string.Concat(Enumerable.Repeat("{\"a\":", 20)) + "1" + new string('}', 20);
        Assert.Equal(HttpStatusCode.Accepted, (await agent.PostAsync("/api/v1/jobs", Json(Submission(shallow)))).StatusCode);
    }

    private sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
