using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Data;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Bulk;

/// <summary><c>POST /api/v1/approvals/bulk</c>: each item through the single decision path, its own outcome, nothing leaks.</summary>
public sealed class BulkApiTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private TestApp _app = null!;

    private Dictionary<string, string?>? _settings;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock, settings: _settings);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task RestartWith(Dictionary<string, string?> settings)
    {
        await _app.DisposeAsync();
        _settings = settings;
        await InitializeAsync();
    }

    private async Task<List<string>> SubmitPayments(int count, int from = 1)
    {
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            ids.Add((await _app.Agent("acme").SubmitPayment(from + i)).Str("approvalId"));
        }
        return ids;
    }

    private static Task<HttpResponseMessage> Bulk(HttpClient client, object body) => client.PostAsJsonAsync("/api/v1/approvals/bulk", body);

    private static Dictionary<string, JsonElement> ItemsById(JsonElement body) =>
        body.GetProperty("items").EnumerateArray().ToDictionary(i => i.Str("id"));

    // Read with the agent's key: its rate limit bucket is not the deciding account's.
    private async Task<string> StateOf(string id) =>
        (await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state");

    private async Task<List<ReviewerPortal.Features.Audit.AuditEntry>> AuditOf(IEnumerable<string> ids)
    {
        var list = ids.ToList();
        await using var scope = _app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        return await db.AuditEntries.Where(e => e.ApprovalId != null && list.Contains(e.ApprovalId)).ToListAsync();
    }

    [Fact]
    public async Task Bulk_approve_of_five_with_one_reason_writes_five_audit_rows_via_bulk()
    {
        var ids = await SubmitPayments(5);

        var response = await Bulk(_app.Account("alice"), new { verdict = "approve", reason = "month-end run checked", items = ids.Select(id => new { id }) });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Json();
        Assert.Equal(5, body.GetProperty("count").GetInt32());
        Assert.Equal(5, body.GetProperty("succeeded").GetInt32());
        Assert.Equal(0, body.GetProperty("failed").GetInt32());
        Assert.All(body.GetProperty("items").EnumerateArray(), i =>
        {
            Assert.Equal(200, i.GetProperty("status").GetInt32());
            Assert.Equal("approved", i.Str("result"));
        });
        var approved = (await AuditOf(ids)).Where(e => e.Action == "approved").ToList();
        Assert.Equal(5, approved.Count);
        Assert.Equal(ids.Order(), approved.Select(e => e.ApprovalId!).Order());
        Assert.All(approved, e =>
        {
            Assert.Equal("via: bulk", e.Details);
            Assert.Equal("month-end run checked", e.Reason);
            Assert.Equal("user:alice", e.Actor);
        });
        foreach (var id in ids)
        {
            Assert.Equal("approved", await StateOf(id));
        }
    }

    [Fact]
    public async Task A_stale_job_hash_is_409_for_that_item_and_the_others_are_approved()
    {
        var first = await _app.Agent("acme").SubmitPayment(1);
        var second = await _app.Agent("acme").SubmitPayment(2);
        var third = await _app.Agent("acme").SubmitPayment(3);
        var stale = new string('0', 64);

        var response = await Bulk(_app.Account("alice"), new
        {
            verdict = "approve",
            reason = "ok",
            items = new object[]
            {
                new { id = first.Str("approvalId"), jobHash = first.Str("jobHash") },
                new { id = second.Str("approvalId"), jobHash = stale },
                new { id = third.Str("approvalId"), jobHash = third.Str("jobHash"), policySnapshot = third.Str("policySnapshot") },
            },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var items = ItemsById(await response.Json());
        var conflict = items[second.Str("approvalId")];
        Assert.Equal(409, conflict.GetProperty("status").GetInt32());
        Assert.Equal("conflict", conflict.Str("result"));
        Assert.Equal("job_changed", conflict.Str("code"));
        Assert.Equal(second.Str("jobHash"), conflict.Str("jobHash"));
        Assert.Equal("approved", items[first.Str("approvalId")].Str("result"));
        Assert.Equal("approved", items[third.Str("approvalId")].Str("result"));
        Assert.Equal("pending", await StateOf(second.Str("approvalId")));
        var refused = (await AuditOf([second.Str("approvalId")])).Single(e => e.Action == "approve_refused");
        Assert.Equal("job_changed", refused.Reason);
        Assert.Equal("via: bulk", refused.Details);
    }

    [Fact]
    public async Task The_callers_own_request_in_the_list_is_refused_for_it_and_audited()
    {
        var others = await SubmitPayments(2);
        var own = (await (await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-OWN", amount = 5 },
            requestedBy = "Alice@example.com",
        })).Json()).Str("approvalId");

        var response = await Bulk(_app.Account("alice"), new { verdict = "approve", reason = "ok", items = new[] { others[0], own, others[1] }.Select(id => new { id }) });

        var items = ItemsById(await response.Json());
        Assert.Equal(403, items[own].GetProperty("status").GetInt32());
        Assert.Equal("refused", items[own].Str("result"));
        Assert.Equal("requester_may_not_approve", items[own].Str("code"));
        Assert.Equal("approved", items[others[0]].Str("result"));
        Assert.Equal("approved", items[others[1]].Str("result"));
        Assert.Equal("pending", await StateOf(own));
        var refused = (await AuditOf([own])).Single(e => e.Action == "approve_refused");
        Assert.Equal("requester_may_not_approve", refused.Reason);
        Assert.Equal("via: bulk", refused.Details);
    }

    [Fact]
    public async Task Another_tenants_id_is_not_found_without_a_trace_and_the_others_proceed()
    {
        var mine = await SubmitPayments(1);
        var theirs = (await _app.Agent("globex").SubmitPayment(9)).Str("approvalId");

        var response = await Bulk(_app.Account("alice"), new { verdict = "reject", reason = "no", items = new[] { theirs, mine[0] }.Select(id => new { id }) });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var items = ItemsById(await response.Json());
        var hidden = items[theirs];
        Assert.Equal(404, hidden.GetProperty("status").GetInt32());
        Assert.Equal("not_found", hidden.Str("result"));
        foreach (var leak in new[] { "state", "jobHash", "policySnapshot" })
        {
            Assert.True(!hidden.TryGetProperty(leak, out var value) || value.ValueKind == JsonValueKind.Null, leak);
        }
        Assert.Equal("rejected", items[mine[0]].Str("result"));
        Assert.Equal("pending", (await (await _app.Agent("globex").GetAsync($"/api/v1/approvals/{theirs}")).Json()).Str("state"));
        Assert.DoesNotContain(await AuditOf([theirs]), e => e.Actor == "user:alice");
    }

    [Fact]
    public async Task A_retry_answers_already_approved_for_each_item_and_writes_no_new_rows()
    {
        var ids = await SubmitPayments(3);
        var body = new { verdict = "approve", reason = "ok", items = ids.Select(id => new { id }) };
        Assert.Equal(HttpStatusCode.OK, (await Bulk(_app.Account("alice"), body)).StatusCode);
        var rowsBefore = (await AuditOf(ids)).Count;

        var retry = await Bulk(_app.Account("alice"), body);

        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        var json = await retry.Json();
        Assert.All(json.GetProperty("items").EnumerateArray(), i =>
        {
            Assert.Equal(200, i.GetProperty("status").GetInt32());
            Assert.Equal("already_approved", i.Str("result"));
        });
        Assert.Equal(3, json.GetProperty("succeeded").GetInt32());
        Assert.Equal(rowsBefore, (await AuditOf(ids)).Count);
        Assert.Equal(3, (await AuditOf(ids)).Count(e => e.Action == "approved"));
    }

    [Fact]
    public async Task A_filter_decides_the_pending_approvals_of_that_topic_env_age_and_risk_only()
    {
        var old = await SubmitPayments(2);
        var oldNotify = (await (await _app.Agent("acme").Submit(new
        {
            topic = "customer.notify", env = "production", channel = "external", priority = "high", payload = new { to = "c-1" },
        })).Json()).Str("approvalId");
        var oldLow = (await (await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", priority = "low", payload = new { invoice = "INV-L", amount = 1 },
        })).Json()).Str("approvalId");
        _clock.Advance(TimeSpan.FromHours(2));
        var fresh = await SubmitPayments(1, from: 50);
        var theirs = (await _app.Agent("globex").SubmitPayment(7)).Str("approvalId");

        var response = await Bulk(_app.Account("alice"), new
        {
            verdict = "approve",
            reason = "batch",
            filter = new { tenant = "acme", topic = "finance.*", env = "production", olderThan = "1h", risk = "high" },
        });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var items = ItemsById(await response.Json());
        Assert.Equal(old.Order(), items.Keys.Order());
        Assert.All(items.Values, i => Assert.Equal("approved", i.Str("result")));
        foreach (var untouched in new[] { oldNotify, oldLow, fresh[0] })
        {
            Assert.Equal("pending", await StateOf(untouched));
        }
        Assert.Equal("pending", (await (await _app.Agent("globex").GetAsync($"/api/v1/approvals/{theirs}")).Json()).Str("state"));

        // Another tenant's filter is a 404 naming the tenant, as every read of it is.
        var other = await Bulk(_app.Account("alice"), new { verdict = "approve", filter = new { tenant = "globex" } });
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal("pending", (await (await _app.Agent("globex").GetAsync($"/api/v1/approvals/{theirs}")).Json()).Str("state"));
    }

    [Fact]
    public async Task An_item_past_its_deadline_is_409_expired_and_the_fresh_one_is_approved()
    {
        var old = await SubmitPayments(1);
        _clock.Advance(TimeSpan.FromHours(23));
        var fresh = await SubmitPayments(1, from: 20);
        _clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromMinutes(1));

        var response = await Bulk(_app.Account("alice"), new { verdict = "approve", reason = "ok", items = new[] { old[0], fresh[0] }.Select(id => new { id }) });

        var items = ItemsById(await response.Json());
        Assert.Equal(409, items[old[0]].GetProperty("status").GetInt32());
        Assert.Equal("expired", items[old[0]].Str("code"));
        Assert.Equal("approved", items[fresh[0]].Str("result"));
        Assert.Equal("expired", await StateOf(old[0]));
    }

    [Fact]
    public async Task Over_the_cap_is_400_naming_the_field_and_decides_nothing()
    {
        await RestartWith(new() { ["Bulk:MaxItems"] = "3" });
        var ids = await SubmitPayments(4);

        var listed = await Bulk(_app.Account("alice"), new { verdict = "approve", items = ids.Select(id => new { id }) });
        var filtered = await Bulk(_app.Account("alice"), new { verdict = "approve", filter = new { tenant = "acme" } });

        Assert.Equal(HttpStatusCode.BadRequest, listed.StatusCode);
        Assert.True((await listed.Json()).GetProperty("errors").TryGetProperty("items", out _));
        Assert.Equal(HttpStatusCode.BadRequest, filtered.StatusCode);
        Assert.True((await filtered.Json()).GetProperty("errors").TryGetProperty("filter", out _));
        foreach (var id in ids)
        {
            Assert.Equal("pending", await StateOf(id));
        }
        Assert.DoesNotContain(await AuditOf(ids), e => e.Actor == "user:alice");
    }

    [Theory]
    [InlineData("""{"verdict":"maybe","items":[{"id":"ID0"}]}""", "verdict")]
    [InlineData("""{"verdict":"approve","items":[{"id":"ID0"},{"id":"ID1","jobHash":"nothex"}]}""", "items[1].jobHash")]
    [InlineData("""{"verdict":"approve","items":[{"id":"ID0"},{"id":"ID0"}]}""", "items[1].id")]
    [InlineData("""{"verdict":"approve","items":[{"id":"ID0"}],"filter":{"tenant":"acme"}}""", "filter")]
    [InlineData("""{"verdict":"approve"}""", "items")]
    [InlineData("""{"verdict":"approve","filter":{"tenant":"acme","olderThan":"soon"}}""", "filter.olderThan")]
    [InlineData("""{"verdict":"approve","filter":{"tenant":"acme","risk":"extreme"}}""", "filter.risk")]
    [InlineData("""{"verdict":"approve","items":[{"id":"ID0","extra":1}]}""", "extra")]
    public async Task Bad_input_is_400_naming_the_field_and_changes_nothing(string json, string field)
    {
        var ids = await SubmitPayments(2);
        json = json.Replace("ID0", ids[0]).Replace("ID1", ids[1]);

        var response = await _app.Account("alice").PostAsync("/api/v1/approvals/bulk",
            new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = (await response.Json()).GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out _), errors.GetRawText());
        Assert.Equal("pending", await StateOf(ids[0]));
        Assert.Equal("pending", await StateOf(ids[1]));
    }

    [Fact]
    public async Task Each_item_counts_against_the_accounts_rate_limit_and_over_it_nothing_is_decided()
    {
        await RestartWith(new()
        {
            ["RateLimits:PerAccount:PermitsPerSecond"] = "0.01",
            ["RateLimits:PerAccount:Burst"] = "4",
        });
        var ids = await SubmitPayments(5);

        var response = await Bulk(_app.Account("alice"), new { verdict = "approve", items = ids.Select(id => new { id }) });

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal("rate_limited", (await response.Json()).Str("code"));
        Assert.NotNull(response.Headers.RetryAfter);
        foreach (var id in ids)
        {
            Assert.Equal("pending", await StateOf(id));
        }
    }
}
