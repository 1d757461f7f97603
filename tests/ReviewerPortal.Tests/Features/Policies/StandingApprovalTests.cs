using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Policies;

/// <summary>
/// Issue 16, standing approvals ("approve always"): an approver approves and adds a time-limited exception for the same
/// topic and env (optionally the same values of chosen payload fields). It is a published policy version with an
/// <c>allow</c> rule carrying <c>until</c>, honoured by the evaluator only before <c>until</c> on the app's clock.
/// </summary>
public sealed class StandingApprovalTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static Task<HttpResponseMessage> ApproveAlways(HttpClient reviewer, string id, string @for, string[]? fields = null) =>
        reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve-always", new { reason = "recurring vendor run", @for, fields });

    private static Task<HttpResponseMessage> Pay(HttpClient agent, string invoice, int amount, string env = "production") =>
        agent.Submit(new { topic = "finance.payment.execute", env, payload = new { invoice, amount } });

    private async Task<List<JsonElement>> AuditAsync(string action)
    {
        var page = await (await _app.Account("ada").GetAsync($"/api/v1/audit?tenant=acme&action={action}&limit=50")).Json();
        return [.. page.GetProperty("items").EnumerateArray().OrderByDescending(e => e.GetProperty("sequence").GetInt64())]; // newest first
    }

    [Fact]
    public async Task Approve_always_allows_the_same_topic_and_env_without_a_human_and_is_audited_as_the_standing_rule()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");
        var versionsBefore = (await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/policy/history")).Json()).GetProperty("versions").GetArrayLength();

        var response = await ApproveAlways(_app.Account("alice"), id, "8h");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.Equal("approved", body.Str("result"));
        Assert.Equal("approved", body.GetProperty("approval").Str("state"));
        var standing = body.GetProperty("standing");
        var ruleId = standing.Str("ruleId");
        Assert.Equal(_clock.GetUtcNow().AddHours(8), standing.GetProperty("until").GetDateTimeOffset());
        // A published policy change: a new version whose YAML holds the rule with its end.
        var policy = await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/policy")).Json();
        Assert.Equal(standing.Str("snapshot"), policy.Str("snapshot"));
        Assert.Contains($"id: {ruleId}", policy.Str("canonicalYaml"));
        Assert.Contains("until: 2026-11-02T17:00:00Z", policy.Str("canonicalYaml"));
        Assert.Equal(versionsBefore + 1, (await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/policy/history")).Json()).GetProperty("versions").GetArrayLength());
        var published = (await AuditAsync("policy_published")).First();
        Assert.Equal("user:alice", published.Str("actor"));
        Assert.Contains("standing approval", published.Str("details"));

        // The same topic and env now run without a human; another env still waits.
        var next = await Pay(agent, "INV-777", 777);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        var allowed = await next.Json();
        Assert.Equal("allow", allowed.Str("decision"));
        Assert.Equal(ruleId, allowed.Str("ruleId"));
        Assert.Equal(HttpStatusCode.Accepted, (await Pay(agent, "INV-778", 778, env: "staging")).StatusCode);
        var audited = Assert.Single(await AuditAsync("job_allowed"));
        Assert.Contains($"standing approval {ruleId}", audited.Str("reason"));
    }

    [Fact]
    public async Task After_its_window_the_standing_rule_is_ignored_and_a_human_is_needed_again()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await ApproveAlways(_app.Account("alice"), id, "24h")).StatusCode);

        _clock.Advance(TimeSpan.FromHours(24) - TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await Pay(agent, "INV-1", 1)).StatusCode);
        _clock.Advance(TimeSpan.FromSeconds(1));

        // Nobody removed it: the evaluator stops honouring it at 'until' by the app's clock.
        Assert.Equal(HttpStatusCode.Accepted, (await Pay(agent, "INV-2", 2)).StatusCode);
        var listed = await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json();
        Assert.False(Assert.Single(listed.GetProperty("items").EnumerateArray()).GetProperty("active").GetBoolean());
    }

    [Fact]
    public async Task An_exception_bound_to_payload_fields_does_not_allow_other_values()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");

        var response = await ApproveAlways(_app.Account("alice"), id, "2h", ["payload.invoice"]);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("INV-100", (await response.Json()).GetProperty("standing").GetProperty("when").Str("payload.invoice"));
        Assert.Equal(HttpStatusCode.OK, (await Pay(agent, "INV-100", 5)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await Pay(agent, "INV-101", 5)).StatusCode);
    }

    [Fact]
    public async Task A_standing_approval_never_overrides_a_deny()
    {
        var publish = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
            version: v1
            default: require_human
            rules:
              - id: no-666
                when: { topic: finance.payment.execute, payload.amount: "666" }
                decision: deny
              - id: payments
                when: { topic: finance.payment.execute }
                decision: require_human
            """, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, publish.StatusCode);
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await ApproveAlways(_app.Account("alice"), id, "1h")).StatusCode);

        Assert.Equal(HttpStatusCode.Forbidden, (await Pay(agent, "INV-666", 666)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Pay(agent, "INV-665", 665)).StatusCode);
    }

    [Fact]
    public async Task An_admin_revokes_it_and_a_human_is_needed_again()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");
        var ruleId = (await (await ApproveAlways(_app.Account("alice"), id, "8h")).Json()).GetProperty("standing").Str("ruleId");
        var listed = await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json();
        var item = Assert.Single(listed.GetProperty("items").EnumerateArray());
        Assert.Equal(ruleId, item.Str("ruleId"));
        Assert.True(item.GetProperty("active").GetBoolean());

        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Account("alice").DeleteAsync($"/api/v1/tenants/acme/standing-approvals/{ruleId}")).StatusCode);
        var revoked = await _app.Account("ada").DeleteAsync($"/api/v1/tenants/acme/standing-approvals/{ruleId}");

        Assert.Equal(HttpStatusCode.OK, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await Pay(agent, "INV-3", 3)).StatusCode);
        Assert.Empty((await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json()).GetProperty("items").EnumerateArray());
        Assert.DoesNotContain(ruleId, (await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/policy")).Json()).Str("yaml"));
        Assert.Contains("revoked", (await AuditAsync("policy_published")).First().Str("details"));
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("ada").DeleteAsync($"/api/v1/tenants/acme/standing-approvals/{ruleId}")).StatusCode);
    }

    [Fact]
    public async Task The_tenant_caps_the_window_and_a_longer_one_is_400_naming_the_field_and_nothing_is_decided()
    {
        var id = (await _app.Agent("acme").SubmitPayment(100)).Str("approvalId");

        var overDefault = await ApproveAlways(_app.Account("alice"), id, "25h");
        Assert.Equal(HttpStatusCode.BadRequest, overDefault.StatusCode);
        Assert.True((await overDefault.Json()).GetProperty("errors").TryGetProperty("for", out _));

        await Workflow.SetAsync(_app, new { standingApprovalMax = "2h" });
        var overCap = await ApproveAlways(_app.Account("alice"), id, "3h");
        Assert.Equal(HttpStatusCode.BadRequest, overCap.StatusCode);
        Assert.Contains("2h", (await overCap.Json()).GetProperty("errors").GetProperty("for")[0].GetString());
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        var tooLong = await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { standingApprovalMax = "25h" });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.True((await tooLong.Json()).GetProperty("errors").TryGetProperty("standingApprovalMax", out _));
        Assert.Equal("2h", (await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json()).Str("standingApprovalMax"));
    }

    [Fact]
    public async Task Other_tenants_get_404_and_bad_fields_and_quorum_are_refused_before_any_decision()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(100)).Str("approvalId");

        Assert.Equal(HttpStatusCode.NotFound, (await ApproveAlways(_app.Account("gina"), id, "1h")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("gina").GetAsync("/api/v1/tenants/acme/standing-approvals")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("ada").DeleteAsync("/api/v1/tenants/nosuch/standing-approvals/standing-x")).StatusCode);
        var missing = await ApproveAlways(_app.Account("alice"), id, "1h", ["payload.nope"]);
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.True((await missing.Json()).GetProperty("errors").TryGetProperty("fields[0]", out _));

        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var quorum = await ApproveAlways(_app.Account("alice"), id, "1h");
        Assert.Equal(HttpStatusCode.Forbidden, quorum.StatusCode);
        Assert.Equal("standing_approval_needs_single_approver", (await quorum.Json()).Str("code"));
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        Assert.Empty((await (await _app.Account("oscar").GetAsync("/api/v1/tenants/acme/standing-approvals")).Json()).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public void The_evaluator_honours_until_only_before_it()
    {
        var document = PolicyParser.Parse("""
            version: v1
            default: require_human
            rules:
              - id: standing-1
                when: { topic: a.b, env: prod }
                decision: allow
                until: 2026-11-02T10:00:00Z
            """).Document!;
        var job = new JobFacts("a.b", "prod", null, JsonDocument.Parse("{}").RootElement);

        Assert.Equal(PolicyDecision.Allow, PolicyEvaluator.Evaluate(document, job, new DateTimeOffset(2026, 11, 2, 9, 59, 59, TimeSpan.Zero)).Decision);
        Assert.Equal(PolicyDecision.RequireHuman, PolicyEvaluator.Evaluate(document, job, new DateTimeOffset(2026, 11, 2, 10, 0, 0, TimeSpan.Zero)).Decision);
        Assert.Equal(PolicyDecision.RequireHuman, PolicyEvaluator.Evaluate(document, job).Decision);
        Assert.Contains("until", Assert.Single(PolicyParser.Parse("""
            version: v1
            rules:
              - id: x
                decision: deny
                until: 2026-11-02T10:00:00Z
            """).Errors).Field);
    }

    [Fact]
    public async Task A_read_modify_publish_never_overwrites_a_version_published_since()
    {
        var publisher = _app.Services.GetRequiredService<PolicyPublisher>();
        var store = _app.Services.GetRequiredService<PolicyStore>();
        var before = (await store.GetCurrentAsync("acme"))!;
        // An admin publishes while a standing approval is being written from the version read before.
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy",
            new StringContent("version: v1\nrules: []\n", Encoding.UTF8, "application/yaml"))).StatusCode);
        var admins = await store.GetCurrentSnapshotAsync("acme");

        var late = await publisher.PublishAsync("acme", before.Yaml.TrimEnd() + "\n  - id: late\n    decision: allow\n", ReviewerPortal.Features.Auth.Caller.From(
            new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity())), CancellationToken.None, expectedCurrent: before.Snapshot);

        Assert.Empty(late.Errors);
        Assert.True(late.Stale);
        Assert.Equal(admins, await store.GetCurrentSnapshotAsync("acme"));
    }
}
