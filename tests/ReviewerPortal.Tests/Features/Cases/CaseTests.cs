using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Cases;

/// <summary>The compliance case of the seeds: documents → review loops, deadlines, a 60-day window, on a fake clock.</summary>
public sealed class CaseTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task PassAsync(TimeSpan span)
    {
        _clock.Advance(span);
        await _app.Services.GetRequiredService<ExpiryService>().RunDueAsync(CancellationToken.None);
    }

    private async Task<JsonElement> OpenAsync(object? body = null)
    {
        var response = await _app.Agent("acme").PostAsJsonAsync("/api/v1/cases",
            body ?? new { subject = "Onboarding ACME Ltd", documents = new[] { "passport", "proof_of_address" }, maxIterations = 5, window = "P60D", documentDeadline = "P10D" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Json()).GetProperty("case");
    }

    private async Task<JsonElement> DocumentsAsync(string id, int n)
    {
        var response = await _app.Agent("acme").PostAsJsonAsync($"/api/v1/cases/{id}/documents", new { documents = new { batch = n, files = new[] { $"doc-{n}.pdf" } } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Json()).GetProperty("case");
    }

    private async Task<HttpResponseMessage> DecideAsync(string id, object body, string user = "alice") =>
        await _app.Account(user).PostAsJsonAsync($"/api/v1/cases/{id}/decision", body);

    private async Task<JsonElement> GetAsync(string id) => await (await _app.Account("oscar").GetAsync($"/api/v1/cases/{id}")).Json();

    [Fact]
    public async Task Five_iterations_across_sixty_days_end_approved_with_every_step_audited()
    {
        var id = (await OpenAsync()).Str("id");

        for (var i = 1; i <= 5; i++)
        {
            await PassAsync(TimeSpan.FromDays(8)); // inside each 10-day document deadline
            Assert.Equal("in_review", (await DocumentsAsync(id, i)).Str("state"));
            await PassAsync(TimeSpan.FromDays(3));
            var status = await GetAsync(id);
            Assert.Equal(i, status.GetProperty("iterations").GetArrayLength());
            Assert.Equal("in_review", status.Str("state"));
            var decision = i < 5
                ? new { decision = "request_documents", reason = $"round {i} incomplete", documents = new[] { $"statement-{i}" } }
                : (object)new { decision = "approve", reason = "all documents verified" };
            var answer = await DecideAsync(id, decision);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }

        var done = await GetAsync(id);
        Assert.Equal("approved", done.Str("state"));
        Assert.Equal(5, done.GetProperty("iterations").GetArrayLength());
        Assert.Equal(_clock.GetUtcNow(), done.GetProperty("closedAt").GetDateTimeOffset());
        Assert.True(done.GetProperty("closedAt").GetDateTimeOffset() - done.GetProperty("openedAt").GetDateTimeOffset() == TimeSpan.FromDays(55));
        Assert.Equal(5, await _app.AuditCountAsync(id, "documents_submitted"));
        Assert.Equal(4, await _app.AuditCountAsync(id, "documents_requested"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "case_decided"));
        Assert.Equal(0, await _app.AuditCountAsync(id, "case_timed_out"));
    }

    [Fact]
    public async Task A_sixth_request_for_documents_escalates_the_case()
    {
        var id = (await OpenAsync(new { subject = "Loop", documents = new[] { "kyc" }, maxIterations = 2 })).Str("id");
        await DocumentsAsync(id, 1);
        await DecideAsync(id, new { decision = "request_documents", documents = new[] { "more" } });
        await DocumentsAsync(id, 2);

        var answer = await (await DecideAsync(id, new { decision = "request_documents", documents = new[] { "even more" } })).Json();

        Assert.Equal("escalated", answer.GetProperty("case").Str("state"));
        Assert.Contains("limit of 2 iterations", answer.GetProperty("case").Str("outcomeReason"));
    }

    [Fact]
    public async Task Documents_not_submitted_by_the_deadline_reject_the_case_once()
    {
        var id = (await OpenAsync()).Str("id");

        await PassAsync(TimeSpan.FromDays(10) - TimeSpan.FromMinutes(1));
        Assert.Equal("documents_requested", (await GetAsync(id)).Str("state"));
        await PassAsync(TimeSpan.FromMinutes(1));
        await PassAsync(TimeSpan.FromDays(60));

        var status = await GetAsync(id);
        Assert.Equal("rejected", status.Str("state"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "case_timed_out"));
        var late = await _app.Agent("acme").PostAsJsonAsync($"/api/v1/cases/{id}/documents", new { documents = new { late = true } });
        Assert.Equal(HttpStatusCode.Conflict, late.StatusCode);
    }

    [Fact]
    public async Task A_case_still_in_review_when_the_window_closes_is_escalated()
    {
        var id = (await OpenAsync(new { subject = "Slow review", documents = new[] { "kyc" }, window = "P30D", onDocumentTimeout = "escalate" })).Str("id");
        await DocumentsAsync(id, 1);

        await PassAsync(TimeSpan.FromDays(30));

        var status = await GetAsync(id);
        Assert.Equal("escalated", status.Str("state"));
        Assert.Contains("window closed", status.Str("outcomeReason"));
    }

    [Fact]
    public async Task An_away_approvers_delegate_decides_the_case_for_them_and_the_audit_says_so()
    {
        var id = (await OpenAsync()).Str("id");
        await DocumentsAsync(id, 1);
        Assert.Equal(HttpStatusCode.NotFound, (await DecideAsync(id, new { decision = "approve" }, "carol")).StatusCode);

        var away = await _app.Account("alice").PutAsJsonAsync("/api/v1/me/delegation",
            new { delegateTo = "carol", until = _clock.GetUtcNow().AddDays(2) });
        Assert.True(away.IsSuccessStatusCode, await away.Content.ReadAsStringAsync());
        var decided = await DecideAsync(id, new { decision = "approve", reason = "covering for alice" }, "carol");

        Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        Assert.Equal("approved", (await GetAsync(id)).Str("state"));
        var audit = await (await _app.Account("oscar").GetAsync("/api/v1/audit?tenant=acme&action=case_decided")).Json();
        var row = Assert.Single(audit.GetProperty("items").EnumerateArray(), r => r.Str("actor") == "user:carol");
        Assert.Contains("for: alice", row.Str("details"));
    }

    [Fact]
    public async Task Only_approvers_decide_and_other_tenants_see_404()
    {
        var id = (await OpenAsync()).Str("id");
        await DocumentsAsync(id, 1);

        Assert.Equal(HttpStatusCode.Forbidden, (await DecideAsync(id, new { decision = "approve" }, "oscar")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await DecideAsync(id, new { decision = "approve" }, "gina")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Agent("globex").GetAsync($"/api/v1/cases/{id}")).StatusCode);
        var bad = await DecideAsync(id, new { decision = "maybe" });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.True((await bad.Json()).GetProperty("errors").TryGetProperty("decision", out _));
        Assert.Equal("in_review", (await GetAsync(id)).Str("state"));
    }

    [Fact]
    public async Task Opening_twice_with_one_idempotency_key_opens_one_case()
    {
        var body = new { subject = "Once", documents = new[] { "kyc" }, idempotencyKey = "case-1" };
        var first = await OpenAsync(body);
        var again = await _app.Agent("acme").PostAsJsonAsync("/api/v1/cases", body);

        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(first.Str("id"), (await again.Json()).GetProperty("case").Str("id"));
    }
}
