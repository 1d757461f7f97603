using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Redaction;

/// <summary>
/// Issue 14, redaction: secrets pasted into reasons, notes and case decisions never reach storage, the audit history,
/// notifications or the logs; payload fields the tenant lists are masked for people while the job hash and the
/// dispatch keep the original.
/// </summary>
public sealed class RedactionTests
{
    private const string Jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC03In0.Zm9vYmFyYmF6cXV4MTIz";
    private const string OpenAiKey = "sk-proj-Q7mX2vL9pR4tW8yB1nC6";
    private const string Password = "Hunter2-Zx81!";
    private const string PemBody = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
    private static readonly string Pem = $"-----BEGIN PRIVATE KEY-----\n{PemBody}\nMIIBCgKCAQEA+xGZ/wcz9ugFpP07Nspo6U17l0YhFiFpxxU4pTk3Lifz9R3zsIsu\n-----END PRIVATE KEY-----";
    private static readonly string[] Secrets = [Jwt, OpenAiKey, Password, PemBody];

    /// <summary>A reason a hurried reviewer might write: every built-in kind, and words around them that must stay.</summary>
    private static readonly string Reason =
        $"Agent called with Authorization: Bearer {Jwt} and key {OpenAiKey}; db password={Password} (rotate!). Key follows:\n{Pem}\nEnd of note.";

    private static readonly string[] Kept = ["Agent called with Authorization: Bearer", "and key", "db password=", "(rotate!)", "Key follows:", "End of note."];

    private static readonly string[] Markers = ["[redacted:bearer]", "[redacted:api_key]", "[redacted:credential]", "[redacted:private_key]"];

    private static object Notifications(WebhookReceiver webhook, SmtpSink smtp) => new
    {
        webhookUrl = webhook.Url,
        webhookSecret = "notification-secret-0123456789",
        smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", security = "none", to = new[] { "team@example.invalid" } },
    };

    private static async Task<List<ReviewerPortal.Features.Audit.AuditEntry>> AuditRowsAsync(TestApp app, string? approvalId = null)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        return await db.AuditEntries.Where(e => approvalId == null || e.ApprovalId == approvalId).ToListAsync();
    }

    private static async Task<JsonElement> CountersAsync(TestApp app) =>
        (await (await app.Account("oscar").GetAsync("/api/v1/stats?tenant=acme")).Json()).GetProperty("counters");

    private static void AssertRedacted(string text)
    {
        Assert.DoesNotContain(Secrets, text.Contains);
        Assert.All(Markers, m => Assert.Contains(m, text));
        Assert.All(Kept, k => Assert.Contains(k, text));
    }

    [Fact]
    public async Task A_rejection_reason_with_a_token_a_key_a_password_and_a_private_key_is_stored_audited_and_notified_redacted()
    {
        var logs = new CapturedLogs();
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        await Workflow.SetAsync(app, new { notifications = Notifications(webhook, smtp) });
        var id = (await app.Agent("acme").SubmitPayment(31)).Str("approvalId");
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);
        webhook.Requests.Clear();
        smtp.Messages.Clear();

        var rejected = await app.Account("alice").Reject(id, new { reason = Reason });
        Assert.Equal(HttpStatusCode.OK, rejected.StatusCode);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        AssertRedacted((await rejected.Json()).GetProperty("approval").Str("reason"));
        AssertRedacted((await Workflow.GetApprovalAsync(app, id)).Str("reason"));
        var audited = Assert.Single(await AuditRowsAsync(app, id), e => e.Action == "rejected");
        AssertRedacted(audited.Reason!);
        var notified = Assert.Single(webhook.Requests);
        Assert.DoesNotContain(Secrets, notified.Body.Contains);
        Assert.Contains("[redacted:bearer]", notified.Body);
        var mail = Assert.Single(smtp.Messages);
        Assert.DoesNotContain(Secrets, mail.Data.Contains);
        Assert.Contains("[redacted:credential]", mail.Data);

        var counters = await CountersAsync(app);
        Assert.Equal(1, counters.GetProperty("redactions_bearer").GetInt64());
        Assert.Equal(1, counters.GetProperty("redactions_api_key").GetInt64());
        Assert.Equal(1, counters.GetProperty("redactions_credential").GetInt64());
        Assert.Equal(1, counters.GetProperty("redactions_private_key").GetInt64());
        Assert.Contains(logs.Lines, l => l.Contains("Redacted", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => Secrets.Any(l.Contains));
    }

    [Fact]
    public async Task Request_changes_withdraw_re_evaluate_and_case_texts_are_redacted_and_no_secret_is_left_in_the_database_or_redis()
    {
        var logs = new CapturedLogs();
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?>
            {
                ["Redis:Configuration"] = "", // the embedded Garnet, its append-only log under the data folder
                ["Redis:KeyPrefix"] = "",
                ["Dispatch:Enabled"] = "false",
                ["Notifications:Enabled"] = "false",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var agent = app.Agent("acme");
        var alice = app.Account("alice");

        var changed = (await agent.SubmitPayment(41)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await alice.PostAsJsonAsync($"/api/v1/approvals/{changed}/reevaluate", new { reason = Reason })).StatusCode);
        var requested = await alice.PostAsJsonAsync($"/api/v1/approvals/{changed}/request-changes", new { reason = Reason });
        Assert.Equal(HttpStatusCode.OK, requested.StatusCode);
        AssertRedacted((await requested.Json()).GetProperty("approval").Str("changesReason"));
        var withdrawn = await agent.PostAsJsonAsync($"/api/v1/approvals/{changed}/withdraw", new { reason = Reason });
        Assert.Equal(HttpStatusCode.OK, withdrawn.StatusCode);
        AssertRedacted((await withdrawn.Json()).GetProperty("approval").Str("reason"));
        var approved = (await agent.SubmitPayment(42)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await alice.Approve(approved, new { reason = Reason })).StatusCode);

        var opened = await agent.PostAsJsonAsync("/api/v1/cases",
            new { subject = $"Onboarding, token={Password}", documents = new[] { "passport" }, maxIterations = 3, window = "P30D", documentDeadline = "P10D" });
        Assert.Equal(HttpStatusCode.Created, opened.StatusCode);
        var caseId = (await opened.Json()).GetProperty("case").Str("id");
        Assert.Equal(HttpStatusCode.OK, (await agent.PostAsJsonAsync($"/api/v1/cases/{caseId}/documents", new { documents = new { files = new[] { "p.pdf" } }, note = Reason })).StatusCode);
        var decided = await alice.PostAsJsonAsync($"/api/v1/cases/{caseId}/decision", new { decision = "approve", reason = Reason });
        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);

        var rows = await AuditRowsAsync(app);
        foreach (var action in new[] { "reevaluated", "changes_requested", "withdrawn", "approved", "documents_submitted", "case_decided" })
        {
            var row = Assert.Single(rows, r => r.Action == action && r.Reason is not null && r.Reason.Contains("Key follows:"));
            AssertRedacted(row.Reason!);
        }
        Assert.Contains(rows, r => r.Action == "case_opened" && r.Reason!.Contains("token=[redacted:credential]"));

        // Everything on disk: the Garnet append-only log flushed and checkpointed, the SQLite database and its -wal.
        Assert.Equal("embedded", app.Services.GetRequiredService<RedisConnection>().Mode);
        var found = await DataFolderScan.FindAsync(app, Secrets.Select(s => ($"{s[..6]}…", Encoding.UTF8.GetBytes(s))));
        Assert.True(found.Count == 0, "Found on disk: " + string.Join("; ", found));
        Assert.DoesNotContain(logs.Lines, l => Secrets.Any(l.Contains));
    }

    [Fact]
    public async Task A_reason_of_the_longest_length_full_of_short_secrets_still_fits_the_audit_column()
    {
        await using var app = await TestApp.StartAsync();
        var id = (await app.Agent("acme").SubmitPayment(71)).Str("approvalId");
        var reason = string.Concat(Enumerable.Repeat("pwd=a ", 333)) + "xx"; // 2000 characters, each "a" becomes [redacted:credential]
        Assert.Equal(2000, reason.Length);

        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Reject(id, new { reason })).StatusCode);

        var stored = (await Workflow.GetApprovalAsync(app, id)).Str("reason");
        Assert.True(stored.Length <= 2000, $"{stored.Length} characters");
        Assert.StartsWith("pwd=[redacted:credential] pwd=[redacted:credential]", stored);
        Assert.True(Assert.Single(await AuditRowsAsync(app, id), e => e.Action == "rejected").Reason!.Length <= 2000);
    }

    [Fact]
    public async Task A_tenant_pattern_is_redacted_with_its_name_and_counted()
    {
        await using var app = await TestApp.StartAsync();
        await Workflow.SetAsync(app, new { redactPatterns = new[] { new { name = "employee-id", regex = @"\bEMP-\d{6}\b" } } });
        var settings = await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal("employee-id", settings.GetProperty("redactPatterns")[0].Str("name"));
        var id = (await app.Agent("acme").SubmitPayment(51)).Str("approvalId");

        await app.Account("alice").Reject(id, new { reason = "payee is EMP-123456, not a vendor" });

        Assert.Equal("payee is [redacted:employee-id], not a vendor", (await Workflow.GetApprovalAsync(app, id)).Str("reason"));
        Assert.Equal(1, (await CountersAsync(app)).GetProperty("redactions_custom").GetInt64());
    }

    [Fact]
    public async Task An_invalid_pattern_or_field_path_is_refused_naming_the_field()
    {
        await using var app = await TestApp.StartAsync();
        var put = await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            redactPatterns = new[] { new { name = "ok", regex = "fine-\\d+" }, new { name = "broken", regex = "(unclosed[" } },
            redactFields = new[] { "card.number", "bad path!" },
        });

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        var errors = (await put.Json()).GetProperty("errors");
        Assert.True(errors.TryGetProperty("redactPatterns[1].regex", out _), errors.ToString());
        Assert.True(errors.TryGetProperty("redactFields[1]", out _), errors.ToString());
        Assert.False(errors.TryGetProperty("redactPatterns[0].regex", out _));
        var settings = await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(0, settings.GetProperty("redactPatterns").GetArrayLength());
    }

    [Fact]
    public async Task A_catastrophic_tenant_pattern_cannot_hold_a_decision_and_the_text_is_not_stored_unscanned()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Redaction:MatchTimeout"] = "00:00:00.100" });
        await Workflow.SetAsync(app, new { redactPatterns = new[] { new { name = "evil", regex = "^(a+)+$" } } });
        var id = (await app.Agent("acme").SubmitPayment(61)).Str("approvalId");

        // Exponential backtracking: without a match timeout this input takes hours.
        var rejected = await app.Account("alice").Reject(id, new { reason = new string('a', 48) + "!" });

        Assert.Equal(HttpStatusCode.OK, rejected.StatusCode);
        Assert.Equal("[redacted:unscanned]", (await Workflow.GetApprovalAsync(app, id)).Str("reason"));
        Assert.Equal(1, (await CountersAsync(app)).GetProperty("redactions_unscanned").GetInt64());
    }

    [Fact]
    public async Task Listed_payload_fields_are_masked_for_reviewers_audit_and_notifications_while_the_hash_and_the_dispatch_keep_the_original()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Notifications:Enabled"] = "false",
            ["Dispatch:Enabled"] = "false", // the test publishes itself (the background loop would race it for the job's lock)
        });
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        await Workflow.SetAsync(app, new
        {
            dispatch = new { kind = "redis", key = "workers" },
            redactFields = new[] { "apiKey", "card.number", "lines.iban" },
            notifications = Notifications(webhook, smtp),
        });
        const string ApiKey = "vendor-key-Kq82LmW3";
        const string NewApiKey = "vendor-key-Pz19XcV7";
        const string Card = "4111111111111111";
        const string Iban = "DE89370400440532013000";
        var agent = app.Agent("acme");
        var payload = new { invoice = "INV-71", amount = 71, apiKey = ApiKey, card = new { number = Card, holder = "Ann Lee" }, lines = new[] { new { iban = Iban, amount = 71 } } };
        var submitted = await (await agent.Submit(new { topic = "finance.payment.execute", env = "production", payload })).Json();
        var id = submitted.Str("approvalId");
        using (var original = JsonDocument.Parse(JsonSerializer.Serialize(payload, JsonSerializerOptions.Web)))
        {
            var job = new JobRequest("finance.payment.execute", "production", null, "normal", original.RootElement.Clone());
            Assert.Equal(JobHasher.Hash("acme", job), submitted.Str("jobHash"));
        }

        // A reviewer reads it masked, on every read path; the submitting agent reads what it sent.
        var asReviewer = (await (await app.Account("alice").GetAsync($"/api/v1/approvals/{id}")).Json()).GetProperty("job").GetProperty("payload");
        Assert.Equal("[redacted:field]", asReviewer.Str("apiKey"));
        Assert.Equal("[redacted:field]", asReviewer.GetProperty("card").Str("number"));
        Assert.Equal("Ann Lee", asReviewer.GetProperty("card").Str("holder"));
        Assert.Equal("[redacted:field]", asReviewer.GetProperty("lines")[0].Str("iban"));
        Assert.Equal(71, asReviewer.GetProperty("lines")[0].GetProperty("amount").GetInt32());
        var listed = await (await app.Account("oscar").GetAsync("/api/v1/approvals?tenant=acme")).Content.ReadAsStringAsync();
        Assert.DoesNotContain(ApiKey, listed);
        Assert.DoesNotContain(Card, listed);
        Assert.Equal(submitted.Str("jobHash"), (await Workflow.GetApprovalAsync(app, id)).Str("jobHash"));
        Assert.Equal(ApiKey, (await Workflow.GetApprovalAsync(app, id)).GetProperty("job").GetProperty("payload").Str("apiKey"));

        // Changes requested, resubmitted with a new key: the audit row and the notification name the change, masked.
        var requested = await app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "use the rotated key" });
        Assert.DoesNotContain(ApiKey, await requested.Content.ReadAsStringAsync());
        var resubmitted = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-71", amount = 72, apiKey = NewApiKey, card = new { number = Card, holder = "Ann Lee" }, lines = new[] { new { iban = Iban, amount = 72 } } } });
        Assert.Equal(HttpStatusCode.OK, resubmitted.StatusCode);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);
        var row = Assert.Single(await AuditRowsAsync(app, id), e => e.Action == "resubmitted");
        Assert.Contains("apiKey: [redacted:field] → [redacted:field]", row.Details);
        Assert.Contains("amount: 71 → 72", row.Details);
        var notified = Assert.Single(webhook.Requests, r => r.Body.Contains("Resubmitted"));
        Assert.Contains("apiKey: [redacted:field] → [redacted:field]", JsonDocument.Parse(notified.Body).RootElement.Str("message"));
        var mails = string.Join("\n", smtp.Messages.Select(m => m.Data));
        var audit = await (await app.Account("oscar").GetAsync($"/api/v1/audit?approvalId={id}")).Content.ReadAsStringAsync();
        var asReviewerAgain = await (await app.Account("alice").GetAsync($"/api/v1/approvals/{id}")).Content.ReadAsStringAsync();
        foreach (var secret in new[] { ApiKey, NewApiKey, Card, Iban })
        {
            Assert.DoesNotContain(secret, row.Details);
            Assert.DoesNotContain(secret, string.Join("\n", webhook.Requests.Select(r => r.Body)));
            Assert.DoesNotContain(secret, mails);
            Assert.DoesNotContain(secret, audit);
            Assert.DoesNotContain(secret, asReviewerAgain); // the lineage's earlier payload too
        }

        // Approved: the worker gets the original values, with the hash of the original payload.
        var approve = await app.Account("bob").Approve(id);
        Assert.Equal(HttpStatusCode.OK, approve.StatusCode);
        Assert.DoesNotContain(NewApiKey, await approve.Content.ReadAsStringAsync());
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        var sink = await app.Services.GetRequiredService<RedisConnection>().Database.ListRangeAsync(RedisKeys.Sink("acme", "workers"));
        var message = JsonDocument.Parse((string)Assert.Single(sink)!).RootElement;
        var dispatched = message.GetProperty("payload");
        Assert.Equal(NewApiKey, dispatched.Str("apiKey"));
        Assert.Equal(Card, dispatched.GetProperty("card").Str("number"));
        Assert.Equal(Iban, dispatched.GetProperty("lines")[0].Str("iban"));
        var resubmittedJob = new JobRequest("finance.payment.execute", "production", null, "normal", dispatched.Clone());
        Assert.Equal(JobHasher.Hash("acme", resubmittedJob), message.Str("jobHash"));
    }

    private sealed class CapturedLogs : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception) + " " + exception);

        public void Dispose()
        {
        }
    }
}
