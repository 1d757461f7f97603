using System.Net;
using System.Net.Http.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

public sealed class SubmitApiTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Allowed_topic_answers_200_allowed()
    {
        var response = await _app.Agent("acme").Submit(new { topic = "knowledge.read", env = "production", payload = new { q = "x" } });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("allow", body.Str("decision"));
        Assert.Equal("allowed", body.Str("state"));
        Assert.StartsWith("job_", body.Str("jobId"));
        Assert.Equal("allow-readonly", body.Str("ruleId"));
    }

    [Fact]
    public async Task Denied_topic_answers_403_problem_with_rule_id()
    {
        var response = await _app.Agent("acme").Submit(new { topic = "secrets.export", env = "production", payload = new { } });

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Json();
        Assert.Equal("deny-secrets-export", body.Str("ruleId"));
        Assert.Equal("policy_denied", body.Str("code"));
    }

    [Fact]
    public async Task Sixth_bulk_send_in_a_minute_answers_429_with_retry_after()
    {
        var agent = _app.Agent("acme");
        for (var i = 0; i < 5; i++)
        {
            var ok = await agent.Submit(new { topic = "email.bulk_send", env = "production", payload = new { batch = i } });
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        var throttled = await agent.Submit(new { topic = "email.bulk_send", env = "production", payload = new { batch = 6 } });

        Assert.Equal((HttpStatusCode)429, throttled.StatusCode);
        var retryAfter = int.Parse(throttled.Headers.GetValues("Retry-After").Single());
        Assert.InRange(retryAfter, 1, 60);
        Assert.Equal("throttle-bulk-email", (await throttled.Json()).Str("ruleId"));
        // Another tenant has its own window.
        var other = await _app.Agent("globex").Submit(new { topic = "email.bulk_send", env = "production", payload = new { batch = 1 } });
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
    }

    [Fact]
    public async Task Human_required_topic_answers_202_pending_bound_to_snapshot_and_job_hash()
    {
        var agent = _app.Agent("acme");
        var body = await agent.SubmitPayment();

        Assert.Equal("require_human", body.Str("decision"));
        Assert.Equal("pending", body.Str("state"));
        Assert.Matches("^[0-9a-f]{64}$", body.Str("policySnapshot"));
        Assert.Matches("^[0-9a-f]{64}$", body.Str("jobHash"));
        var policy = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/policy")).Json();
        Assert.Equal(policy.Str("snapshot"), body.Str("policySnapshot"));
        var expires = body.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromHours(23.9), TimeSpan.FromHours(24.1));

        var approval = await (await agent.GetAsync($"/api/v1/approvals/{body.Str("approvalId")}")).Json();
        Assert.Equal("pending", approval.Str("state"));
        Assert.Equal(body.Str("jobHash"), approval.Str("jobHash"));
        Assert.Equal("finance.payment.execute", approval.GetProperty("job").Str("topic"));
    }

    [Fact]
    public async Task External_notification_needs_a_human_internal_does_not_match_that_rule()
    {
        var agent = _app.Agent("acme");
        var external = await agent.Submit(new { topic = "customer.notify", env = "production", channel = "external", payload = new { to = "c1" } });
        Assert.Equal(HttpStatusCode.Accepted, external.StatusCode);
        Assert.Equal("require-approval-external-notify", (await external.Json()).Str("ruleId"));
    }

    [Fact]
    public async Task Job_hash_is_the_same_for_the_same_job_whatever_the_key_order()
    {
        var agent = _app.Agent("acme");
        var a = await (await agent.Submit(new { topic = "customer.notify", env = "prod", channel = "external", payload = new { a = 1, b = new { x = 1, y = 2 } } })).Json();
        var b = await (await agent.PostAsync("/api/v1/jobs", new StringContent(
            """{"payload":{"b":{"y":2,"x":1},"a":1},"channel":"external","env":"prod","topic":"customer.notify"}""",
            System.Text.Encoding.UTF8, "application/json"))).Json();
        Assert.Equal(a.Str("jobHash"), b.Str("jobHash"));
        Assert.NotEqual(a.Str("approvalId"), b.Str("approvalId"));
    }

    [Fact]
    public async Task Same_idempotency_key_returns_the_first_answer_and_creates_nothing()
    {
        var agent = _app.Agent("acme");
        var first = await agent.SubmitPayment(250, idempotencyKey: "pay-INV-250");
        var second = await agent.SubmitPayment(250, idempotencyKey: "pay-INV-250");

        Assert.Equal(first.Str("approvalId"), second.Str("approvalId"));
        Assert.True(second.GetProperty("replayed").GetBoolean());
        var list = await (await agent.GetAsync("/api/v1/approvals?state=pending")).Json();
        Assert.Single(list.GetProperty("items").EnumerateArray(), i => i.Str("id") == first.Str("approvalId"));
        Assert.Equal(1, list.GetProperty("items").GetArrayLength());
    }

    [Theory]
    [InlineData("""{"env":"production","payload":{}}""", "topic")]
    [InlineData("""{"topic":"a b","env":"production","payload":{}}""", "topic")]
    [InlineData("""{"topic":"x","payload":{}}""", "env")]
    [InlineData("""{"topic":"x","env":"production"}""", "payload")]
    [InlineData("""{"topic":"x","env":"production","payload":[1]}""", "payload")]
    [InlineData("""{"topic":"x","env":"production","payload":{},"priority":"urgent"}""", "priority")]
    [InlineData("""{"topic":"x","env":"production","payload":{},"colour":"red"}""", "colour")]
    [InlineData("""{"topic":5,"env":"production","payload":{}}""", "topic")]
    [InlineData("""{"topic":"x",""", "body")]
    public async Task Bad_submit_is_a_400_naming_the_field_and_stores_nothing(string json, string field)
    {
        var agent = _app.Agent("acme");
        var response = await agent.PostAsync("/api/v1/jobs", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var body = await response.Json();
        Assert.True(body.GetProperty("errors").TryGetProperty(field, out _), $"errors should name '{field}': {body}");
        var list = await (await agent.GetAsync("/api/v1/approvals?state=pending")).Json();
        Assert.Equal(0, list.GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Unknown_key_answers_401_and_a_reviewer_token_cannot_submit()
    {
        var anonymous = await _app.WithToken("nope").Submit(new { topic = "knowledge.read", env = "p", payload = new { } });
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        var reviewer = await _app.Account("alice").Submit(new { topic = "knowledge.read", env = "p", payload = new { } });
        Assert.Equal(HttpStatusCode.Forbidden, reviewer.StatusCode);
    }

    [Fact]
    public async Task Pending_list_is_oldest_first_and_cursor_paged()
    {
        var agent = _app.Agent("globex");
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await agent.SubmitPayment(i)).Str("approvalId"));
        }

        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var url = "/api/v1/approvals?state=pending&limit=2" + (cursor is null ? "" : "&cursor=" + cursor);
            var page = await (await agent.GetAsync(url)).Json();
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => i.Str("id")));
            cursor = page.GetProperty("nextCursor").GetString();
        }
        while (cursor is not null);

        Assert.Equal(ids, seen);
        var bad = await agent.GetAsync("/api/v1/approvals?cursor=zzz");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
    }
}
