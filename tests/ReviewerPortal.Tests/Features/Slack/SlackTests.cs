using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Slack;

/// <summary>
/// Slack: the interactive message posted on a request, and the signed button clicks Slack sends back, decided through
/// the same path as the portal. A local receiver plays Slack (the incoming webhook and the interaction's response_url).
/// </summary>
public sealed class SlackTests : IAsyncLifetime
{
    private const string SigningSecret = "slack-signing-secret-8f3a1c9e7b";
    private const string ApiKeyValue = "sk-live-Qm9Xv7TzR2pL8wN4";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;
    private WebhookReceiver _slack = null!;

    public async Task InitializeAsync()
    {
        _slack = WebhookReceiver.Start();
        _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?>
        {
            ["Notifications:Enabled"] = "false", // the test delivers itself
            ["Slack:ResponseUrlHosts:0"] = "127.0.0.1",
            ["Portal:PublicBaseUrl"] = "https://portal.example.test",
        });
        await Workflow.SetAsync(_app, new
        {
            redactFields = new[] { "apiKey" },
            slack = new
            {
                webhookUrl = _slack.Url + "incoming",
                signingSecret = SigningSecret,
                users = new Dictionary<string, string> { ["U0ALICE"] = "alice", ["U0BOB"] = "bob", ["U0OSCAR"] = "oscar" },
            },
        });
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _slack.DisposeAsync();
    }

    [Fact]
    public async Task A_request_posts_a_message_with_approve_reject_and_open_buttons_and_no_masked_secret()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        await _app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        var posted = Assert.Single(_slack.Requests);
        Assert.DoesNotContain(ApiKeyValue, posted.Body);
        Assert.Contains("[redacted:field]", posted.Body);
        var message = JsonDocument.Parse(posted.Body).RootElement;
        Assert.Contains("finance.payment.execute", message.Str("text"));
        var text = message.GetProperty("blocks").GetRawText();
        Assert.Contains("production", text);
        Assert.Contains("demo acme agent", text);
        var buttons = message.GetProperty("blocks").EnumerateArray()
            .Where(b => b.Str("type") == "actions")
            .SelectMany(b => b.GetProperty("elements").EnumerateArray()).ToList();
        var approve = Assert.Single(buttons, b => b.Str("action_id") == "approve");
        var reject = Assert.Single(buttons, b => b.Str("action_id") == "reject");
        var open = Assert.Single(buttons, b => b.TryGetProperty("url", out _));
        Assert.Equal($"acme|{id}|{submitted.Str("jobHash")}", approve.Str("value"));
        Assert.Equal(approve.Str("value"), reject.Str("value"));
        Assert.Equal($"https://portal.example.test/approvals/{id}", open.Str("url"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "notified"));

        // Slack reports a click on the link button too: acknowledged, nothing decided.
        Assert.Equal(approve.Str("value"), open.Str("value"));
        Assert.Equal(HttpStatusCode.OK, (await ClickAsync("U0ALICE", "open", open.Str("value"))).StatusCode);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        // The value the message carries is what a click sends back: it decides.
        Assert.Equal(HttpStatusCode.OK, (await ClickAsync("U0ALICE", "approve", approve.Str("value"))).StatusCode);
        Assert.Equal("approved", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
    }

    [Fact]
    public async Task A_signed_click_decides_through_the_decision_path_and_updates_the_message()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        var response = await ClickAsync("U0ALICE", "approve", Value(submitted));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var approval = await Workflow.GetApprovalAsync(_app, id);
        Assert.Equal("approved", approval.Str("state"));
        Assert.Equal("alice", approval.Str("decidedBy"));
        var decided = Assert.Single(await AuditAsync(id, "approved"));
        Assert.Equal("user:alice", decided.Actor);
        Assert.Contains("via: slack", decided.Details);
        var update = Assert.Single(Responses());
        Assert.True(update.GetProperty("replace_original").GetBoolean());
        Assert.Contains("Approved by alice", update.Str("text"));
        Assert.DoesNotContain(update.GetProperty("blocks").EnumerateArray(), b => b.Str("type") == "actions");
    }

    [Fact]
    public async Task A_bad_signature_is_401_and_changes_nothing()
    {
        var submitted = await SubmitAsync();
        var body = Body("U0ALICE", "approve", Value(submitted));
        var timestamp = _clock.GetUtcNow().ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);

        var forged = await PostAsync(body, timestamp, Sign("another-secret-of-32-characters!!", timestamp, body));
        var unsigned = await PostAsync(body, timestamp, null);
        var tampered = await PostAsync(Body("U0ALICE", "approve", Value(submitted)) + "&x=1", timestamp, Sign(SigningSecret, timestamp, body));

        Assert.Equal(HttpStatusCode.Unauthorized, forged.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, tampered.StatusCode);
        Assert.Equal("application/problem+json", forged.Content.Headers.ContentType?.MediaType);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, submitted.Str("approvalId"))).Str("state"));
        Assert.Empty(await AuditAsync(submitted.Str("approvalId"), null, "approve"));
        Assert.Empty(Responses());
    }

    [Fact]
    public async Task A_signed_click_over_the_body_limit_is_401_and_one_under_it_is_read_whole()
    {
        var submitted = await SubmitAsync();
        var timestamp = _clock.GetUtcNow().ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var click = Body("U0ALICE", "approve", Value(submitted));
        var over = click + "&pad=" + new string('x', ReviewerPortal.Features.Slack.SlackApi.MaxBodyBytes);
        var under = click + "&pad=" + new string('x', ReviewerPortal.Features.Slack.SlackApi.MaxBodyBytes - click.Length - 10);

        var refused = await PostAsync(over, timestamp, Sign(SigningSecret, timestamp, over));

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, submitted.Str("approvalId"))).Str("state"));
        var read = await PostAsync(under, timestamp, Sign(SigningSecret, timestamp, under));
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("approved", (await Workflow.GetApprovalAsync(_app, submitted.Str("approvalId"))).Str("state"));
    }

    [Fact]
    public async Task A_click_signed_six_minutes_ago_is_a_replay_and_401()
    {
        var submitted = await SubmitAsync();
        var old = _clock.GetUtcNow() - TimeSpan.FromMinutes(6);

        var replayed = await ClickAsync("U0ALICE", "approve", Value(submitted), at: old);
        var future = await ClickAsync("U0ALICE", "approve", Value(submitted), at: _clock.GetUtcNow() + TimeSpan.FromMinutes(6));

        Assert.Equal(HttpStatusCode.Unauthorized, replayed.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, future.StatusCode);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, submitted.Str("approvalId"))).Str("state"));
        Assert.Empty(Responses());
    }

    [Fact]
    public async Task An_unknown_slack_user_is_refused_audited_and_told_why()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        Assert.Equal(HttpStatusCode.OK, (await ClickAsync("U0STRANGER", "approve", Value(submitted))).StatusCode);

        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        var refused = Assert.Single(await AuditAsync(id, "approve_refused"));
        Assert.Equal("unknown_slack_user", refused.Reason);
        Assert.Equal("slack:U0STRANGER", refused.Actor);
        Assert.Contains("via: slack", refused.Details);
        var answer = Assert.Single(Responses());
        Assert.Equal("ephemeral", answer.Str("response_type"));
        Assert.False(answer.GetProperty("replace_original").GetBoolean());
        Assert.Contains("not linked", answer.Str("text"));
    }

    [Fact]
    public async Task Someone_who_is_not_an_approver_is_refused_and_audited()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        Assert.Equal(HttpStatusCode.OK, (await ClickAsync("U0OSCAR", "reject", Value(submitted))).StatusCode);

        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        var refused = Assert.Single(await AuditAsync(id, "reject_refused"));
        Assert.Equal("not_an_approver", refused.Reason);
        Assert.Equal("user:oscar", refused.Actor);
        Assert.Contains("via: slack", refused.Details);
        Assert.Contains("not an approver", Assert.Single(Responses()).Str("text"));
    }

    [Fact]
    public async Task The_requester_may_not_approve_their_own_request_from_slack()
    {
        var submitted = await SubmitAsync(requestedBy: "alice@example.invalid");
        var id = submitted.Str("approvalId");

        Assert.Equal(HttpStatusCode.OK, (await ClickAsync("U0ALICE", "approve", Value(submitted))).StatusCode);

        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        var refused = Assert.Single(await AuditAsync(id, "approve_refused"));
        Assert.Equal("requester_may_not_approve", refused.Reason);
        Assert.Contains("via: slack", refused.Details);
        Assert.Contains("requested this action", Assert.Single(Responses()).Str("text"));
    }

    [Fact]
    public async Task A_click_for_a_job_that_changed_is_refused()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        await ClickAsync("U0ALICE", "approve", $"acme|{id}|{new string('0', 64)}");

        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        Assert.Equal("job_changed", Assert.Single(await AuditAsync(id, "approve_refused")).Reason);
        Assert.Contains("changed", Assert.Single(Responses()).Str("text"));
    }

    [Fact]
    public async Task Two_clicks_make_one_decision_and_the_second_says_who_decided()
    {
        var submitted = await SubmitAsync();
        var id = submitted.Str("approvalId");

        await ClickAsync("U0ALICE", "approve", Value(submitted));
        await ClickAsync("U0BOB", "approve", Value(submitted));

        Assert.Single(await AuditAsync(id, "approved"));
        Assert.Equal("alice", (await Workflow.GetApprovalAsync(_app, id)).Str("decidedBy"));
        var answers = Responses();
        Assert.Equal(2, answers.Count);
        Assert.Contains("Already approved by alice", answers[1].Str("text"));
    }

    [Fact]
    public async Task Another_tenants_approval_is_refused_without_telling_it_exists()
    {
        var globex = await (await _app.Agent("globex").Submit(new
        {
            topic = "finance.payment.execute", env = "production", priority = "high", payload = new { invoice = "GLX-1", amount = 5 },
        })).Json();
        var globexId = globex.Str("approvalId");
        var missing = "apr_" + new string('0', 26);

        await ClickAsync("U0ALICE", "approve", $"acme|{globexId}|{globex.Str("jobHash")}");
        await ClickAsync("U0ALICE", "approve", $"acme|{missing}|{globex.Str("jobHash")}");
        // Named as globex's, the click is checked with globex's signing secret (it has none): 401.
        var asGlobex = await ClickAsync("U0ALICE", "approve", $"globex|{globexId}|{globex.Str("jobHash")}");

        Assert.Equal(HttpStatusCode.Unauthorized, asGlobex.StatusCode);
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, globexId, "globex")).Str("state"));
        var answers = Responses();
        Assert.Equal(2, answers.Count);
        Assert.Equal(answers[1].Str("text"), answers[0].Str("text").Replace(globexId, missing));
        Assert.DoesNotContain("GLX", answers[0].GetRawText());
        Assert.Empty(await AuditAsync(globexId, null, "approve"));
    }

    [Fact]
    public async Task Slack_settings_are_write_only_and_validated()
    {
        var admin = _app.Account("ada");
        var shown = await (await admin.GetAsync("/api/v1/tenants/acme/settings")).Json();
        var slack = shown.GetProperty("slack");
        Assert.Equal("(set)", slack.Str("webhookUrl"));
        Assert.Equal("(set)", slack.Str("signingSecret"));
        Assert.Equal("alice", slack.GetProperty("users").Str("U0ALICE"));
        Assert.DoesNotContain(SigningSecret, shown.GetRawText());

        var bad = await admin.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            slack = new { webhookUrl = "http://169.254.169.254/hook", signingSecret = "short", users = new Dictionary<string, string> { ["not an id"] = "alice" } },
        });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = (await bad.Json()).GetProperty("errors");
        Assert.True(errors.TryGetProperty("slack.webhookUrl", out _), errors.GetRawText());
        Assert.True(errors.TryGetProperty("slack.signingSecret", out _), errors.GetRawText());
        Assert.True(errors.TryGetProperty("slack.users", out _), errors.GetRawText());

        // Left out, the secrets stay as they were (the API never shows them back): clicks still verify.
        await Workflow.SetAsync(_app, new { slack = new { users = new Dictionary<string, string> { ["U0ALICE"] = "alice" } } });
        var submitted = await SubmitAsync();
        await ClickAsync("U0ALICE", "approve", Value(submitted));
        Assert.Equal("approved", (await Workflow.GetApprovalAsync(_app, submitted.Str("approvalId"))).Str("state"));
    }

    [Fact]
    public async Task An_export_carries_slack_with_its_secrets_only_when_asked()
    {
        var admin = _app.Account("ada");

        var plain = await (await admin.GetAsync("/api/v1/tenants/acme/export")).Content.ReadAsStringAsync();
        var withSecrets = await (await admin.GetAsync("/api/v1/tenants/acme/export?includeSecrets=true")).Content.ReadAsStringAsync();

        Migration.MigrationTests.AssertValidAgainstSchema(plain);
        Migration.MigrationTests.AssertValidAgainstSchema(withSecrets);
        var lines = plain.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var slack = lines.Single(l => l.Str("type") == "settings").GetProperty("settings").GetProperty("slack");
        Assert.Equal("alice", slack.GetProperty("users").Str("U0ALICE"));
        Assert.DoesNotContain(SigningSecret, plain);
        Assert.DoesNotContain(_slack.Url, plain);
        var omitted = lines[^1].GetProperty("omittedSecrets").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("slack.webhookUrl", omitted);
        Assert.Contains("slack.signingSecret", omitted);
        Assert.Contains(SigningSecret, withSecrets);
        Assert.Contains(_slack.Url + "incoming", withSecrets);
    }

    // ---------------------------------------------------------------- helpers

    private async Task<JsonElement> SubmitAsync(string? requestedBy = null)
    {
        var response = await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            priority = "high",
            payload = new { invoice = "INV-9", amount = Random.Shared.Next(1, 1_000_000), apiKey = ApiKeyValue },
            requestedBy,
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return await response.Json();
    }

    private static string Value(JsonElement submitted) => $"acme|{submitted.Str("approvalId")}|{submitted.Str("jobHash")}";

    private string ResponseUrl => _slack.Url + "response";

    private string Body(string user, string action, string value)
    {
        var payload = JsonSerializer.Serialize(new
        {
            type = "block_actions",
            user = new { id = user, username = user.ToLowerInvariant(), team_id = "T0ACME" },
            team = new { id = "T0ACME", domain = "acme" },
            response_url = ResponseUrl,
            actions = new[] { new { action_id = action, block_id = "decide", value, type = "button" } },
        });
        return "payload=" + Uri.EscapeDataString(payload);
    }

    private Task<HttpResponseMessage> ClickAsync(string user, string action, string value, DateTimeOffset? at = null)
    {
        var body = Body(user, action, value);
        var timestamp = (at ?? _clock.GetUtcNow()).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        return PostAsync(body, timestamp, Sign(SigningSecret, timestamp, body));
    }

    private static string Sign(string secret, string timestamp, string body) =>
        "v0=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"v0:{timestamp}:{body}")));

    private async Task<HttpResponseMessage> PostAsync(string body, string timestamp, string? signature)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/integrations/slack/interactions")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        request.Headers.Add("X-Slack-Request-Timestamp", timestamp);
        if (signature is not null)
        {
            request.Headers.Add("X-Slack-Signature", signature);
        }
        return await _app.CreateClient().SendAsync(request);
    }

    /// <summary>What the app posted to the interactions' response_url (not the incoming webhook), in order.</summary>
    private List<JsonElement> Responses()
    {
        lock (_slack.Requests)
        {
            return [.. _slack.Requests.Select(r => JsonDocument.Parse(r.Body).RootElement)
                .Where(b => b.TryGetProperty("replace_original", out _) || b.TryGetProperty("response_type", out _))];
        }
    }

    private async Task<List<AuditEntry>> AuditAsync(string approvalId, string? action, string? actionPrefix = null)
    {
        await using var scope = _app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var rows = await db.AuditEntries.Where(e => e.ApprovalId == approvalId).OrderBy(e => e.Sequence).ToListAsync();
        return [.. rows.Where(e => action is null ? e.Action.StartsWith(actionPrefix!, StringComparison.Ordinal) : e.Action == action)];
    }
}
