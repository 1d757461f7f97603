using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Delegation;

/// <summary>
/// Out of office: alice names a delegate (carol, a reviewer on acme's escalation ladder, so she reads acme but may not
/// decide at level 0 herself; or bob, alice's fellow approver) who decides for her while she is away, through the one
/// decision path, with four eyes for both, no chains, and the audit saying whose seat was taken.
/// </summary>
public sealed class DelegationTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync()
    {
        _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });
        await Workflow.SetAsync(_app, new { sla = "08:00:00", escalation = new[] { new { approvers = new[] { "carol" }, sla = "08:00:00" } } });
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private DateTimeOffset Now => _clock.GetUtcNow();

    private async Task AwayAsync(string user, string delegateTo, TimeSpan? from = null, TimeSpan? until = null)
    {
        var response = await _app.Account(user).PutAsJsonAsync("/api/v1/me/delegation",
            new { delegateTo, from = Now + (from ?? TimeSpan.Zero), until = Now + (until ?? TimeSpan.FromDays(7)) });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    private async Task<string> SubmitAsync(string? requestedBy = null)
    {
        var submitted = await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-" + Guid.NewGuid().ToString("N")[..6], amount = 10 },
            requestedBy,
        });
        Assert.Equal(HttpStatusCode.Accepted, submitted.StatusCode);
        return (await submitted.Json()).Str("approvalId");
    }

    private async Task<List<JsonElement>> AuditAsync(string approvalId) =>
        [.. (await (await _app.Account("ada").GetAsync($"/api/v1/audit?tenant=acme&approvalId={approvalId}")).Json())
            .GetProperty("items").EnumerateArray()];

    private static async Task AssertRefused(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode} {body}");
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.Str("code"));
    }

    [Fact]
    public async Task The_delegate_decides_for_away_alice_and_the_audit_says_for_alice()
    {
        var id = await SubmitAsync();
        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "not_an_approver");
        await AwayAsync("alice", "carol");

        var approved = await _app.Account("carol").Approve(id);

        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        Assert.Equal("approved", (await approved.Json()).Str("state"));
        var row = (await AuditAsync(id)).Single(e => e.Str("action") == "approved");
        Assert.Equal("user:carol", row.Str("actor"));
        Assert.Contains("for: alice", row.Str("details"));
        Assert.Contains("via: api", row.Str("details"));
    }

    [Fact]
    public async Task After_until_the_delegate_is_refused()
    {
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol", until: TimeSpan.FromHours(2));
        _clock.Advance(TimeSpan.FromHours(2) - TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("carol").Approve(await SubmitAsync())).StatusCode);

        _clock.Advance(TimeSpan.FromSeconds(1));

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "not_an_approver");
    }

    [Fact]
    public async Task Before_from_the_delegate_is_refused()
    {
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol", from: TimeSpan.FromHours(1), until: TimeSpan.FromDays(1));

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "not_an_approver");
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("carol").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task Delegation_does_not_chain()
    {
        // alice alone approves; bob decides for her; bob is away too and names carol: carol gets nothing of alice's.
        await Workflow.SetAsync(_app, new { approvers = new[] { "alice" } });
        var id = await SubmitAsync();
        await AwayAsync("alice", "bob");
        await AwayAsync("bob", "carol");

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "not_an_approver");
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("bob").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task A_delegate_may_not_approve_their_own_request()
    {
        var id = await SubmitAsync(requestedBy: "carol");
        await AwayAsync("alice", "carol");

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "requester_may_not_approve");
        var refused = (await AuditAsync(id)).Single(e => e.Str("action") == "approve_refused");
        Assert.Equal("user:carol", refused.Str("actor"));
        Assert.Contains("for: alice", refused.Str("details"));
    }

    [Fact]
    public async Task A_delegate_may_not_approve_the_request_of_the_person_they_act_for()
    {
        var id = await SubmitAsync(requestedBy: "alice@example.invalid");
        await AwayAsync("alice", "carol");

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "requester_may_not_approve");
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("bob").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task An_admin_ends_a_delegation_and_the_delegate_is_refused()
    {
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol");
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("carol").Approve(await SubmitAsync())).StatusCode);
        var listed = await (await _app.Account("ada").GetAsync("/api/v1/delegations")).Json();
        var item = Assert.Single(listed.GetProperty("items").EnumerateArray());
        Assert.Equal("alice", item.Str("user"));
        Assert.Equal("carol", item.Str("delegateTo"));
        Assert.True(item.GetProperty("active").GetBoolean());
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Account("alice").GetAsync("/api/v1/delegations")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await _app.Account("ada").DeleteAsync("/api/v1/delegations/alice")).StatusCode);

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Forbidden, "not_an_approver");
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("ada").DeleteAsync("/api/v1/delegations/alice")).StatusCode);
        Assert.Equal(1, await _app.AuditCountAsync(null, "delegation_ended"));
    }

    [Fact]
    public async Task Notifications_for_alice_go_to_her_delegate_while_she_is_away()
    {
        await using var webhook = WebhookReceiver.Start();
        await Workflow.SetAsync(_app, new { notifications = new { webhookUrl = webhook.Url, webhookSecret = "notification-secret-0123456789" } });
        await AwayAsync("alice", "carol", until: TimeSpan.FromDays(1));
        var notifier = _app.Services.GetRequiredService<Notifier>();

        await SubmitAsync();
        await notifier.RunDueAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromDays(1)); // alice is back
        await SubmitAsync();
        await notifier.RunDueAsync(CancellationToken.None);

        // The first approval's SLA timers may fire meanwhile (escalation to carol's level): only the requests count here.
        var recipients = webhook.Requests
            .Select(r => JsonDocument.Parse(r.Body).RootElement)
            .Where(n => n.Str("kind") == "approval_requested")
            .Select(n => n.GetProperty("recipients").EnumerateArray().Select(e => e.GetString()).ToList())
            .ToList();
        Assert.Equal(2, recipients.Count);
        Assert.Equal(["carol", "bob"], recipients[0]);
        Assert.Equal(["alice", "bob"], recipients[1]);
    }

    [Fact]
    public async Task Delegation_does_not_open_another_tenant()
    {
        var globex = (await _app.Agent("globex").SubmitPayment(7)).Str("approvalId");
        await AwayAsync("alice", "carol");

        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("carol").GetAsync($"/api/v1/approvals/{globex}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("carol").Approve(globex)).StatusCode);
        // gina (globex) away with carol as delegate: still nothing of acme for gina's sake, and globex opens only now.
        await AwayAsync("gina", "carol");
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("carol").Approve(globex)).StatusCode);
    }

    [Fact]
    public async Task A_person_lapsed_as_delegate_of_a_tenant_they_do_not_read_gets_404()
    {
        await Workflow.SetAsync(_app, new { escalation = Array.Empty<object>() });
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol", until: TimeSpan.FromHours(1));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("carol").GetAsync($"/api/v1/approvals/{id}")).StatusCode);

        _clock.Advance(TimeSpan.FromHours(1));

        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("carol").GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _app.Account("carol").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task A_quorum_counts_a_seat_once_and_a_person_once()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });

        // bob approves for himself; as alice's delegate he cannot fill her seat too.
        var first = await SubmitAsync();
        await AwayAsync("alice", "bob");
        Assert.Equal("vote_recorded", (await (await _app.Account("bob").Approve(first)).Json()).Str("result"));
        var again = await _app.Account("bob").Approve(first);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("already_approved", (await again.Json()).Str("result"));
        var pending = await Workflow.GetApprovalAsync(_app, first);
        Assert.Equal("pending", pending.Str("state"));
        Assert.Single(pending.GetProperty("votes").EnumerateArray());

        // alice votes, then goes away naming carol: carol's vote for alice is alice's seat, already counted.
        Assert.Equal(HttpStatusCode.NoContent, (await _app.Account("alice").DeleteAsync("/api/v1/me/delegation")).StatusCode);
        var second = await SubmitAsync();
        Assert.Equal("vote_recorded", (await (await _app.Account("alice").Approve(second)).Json()).Str("result"));
        await AwayAsync("alice", "carol");
        Assert.Equal("already_approved", (await (await _app.Account("carol").Approve(second)).Json()).Str("result"));
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, second)).Str("state"));

        // carol for alice, then bob: two people, two seats: approved.
        var third = await SubmitAsync();
        Assert.Equal("vote_recorded", (await (await _app.Account("carol").Approve(third)).Json()).Str("result"));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("bob").Approve(third)).StatusCode);
        var decided = await Workflow.GetApprovalAsync(_app, third);
        Assert.Equal("approved", decided.Str("state"));
        var carols = decided.GetProperty("votes").EnumerateArray().Single(v => v.Str("by") == "alice");
        Assert.Equal("carol", carols.Str("delegate"));
    }

    [Fact]
    public async Task A_delegates_edit_and_approve_takes_alices_seat_and_says_so()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol");
        var edited = await _app.Account("carol").PostAsJsonAsync($"/api/v1/approvals/{id}/edit-and-approve",
            new { payload = new { invoice = "INV-7", amount = 400 }, reason = "amount per contract" });
        Assert.Equal("vote_recorded", (await edited.Json()).Str("result"));
        var vote = Assert.Single((await Workflow.GetApprovalAsync(_app, id)).GetProperty("votes").EnumerateArray());
        Assert.Equal("alice", vote.Str("by"));
        Assert.Equal("carol", vote.Str("delegate"));

        // alice back: her seat is already taken by her delegate's vote; it still needs bob.
        Assert.Equal(HttpStatusCode.NoContent, (await _app.Account("alice").DeleteAsync("/api/v1/me/delegation")).StatusCode);
        Assert.Equal("already_approved", (await (await _app.Account("alice").Approve(id)).Json()).Str("result"));
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
        var audit = await (await _app.Account("oscar").GetAsync($"/api/v1/audit?approvalId={id}")).Json();
        Assert.Contains(audit.GetProperty("items").EnumerateArray(),
            r => r.Str("action") == "vote_approve" && r.Str("actor") == "user:carol" && r.Str("details")!.Contains("for: alice"));
    }

    [Fact]
    public async Task A_delegate_who_voted_for_alice_does_not_vote_again_in_their_own_seat()
    {
        await Workflow.SetAsync(_app, new { quorum = new { required = 2, of = 2 } });
        var id = await SubmitAsync();
        await AwayAsync("alice", "carol");
        Assert.Equal("vote_recorded", (await (await _app.Account("carol").Approve(id)).Json()).Str("result"));

        // The SLA runs out: the approval escalates to carol's level, where she may decide as herself.
        _clock.Advance(TimeSpan.FromHours(8));
        await _app.Services.GetRequiredService<ReviewerPortal.Features.Approvals.ExpiryService>().RunDueAsync(CancellationToken.None);
        Assert.Equal(1, (await Workflow.GetApprovalAsync(_app, id)).GetProperty("escalationLevel").GetInt32());

        await AssertRefused(await _app.Account("carol").Approve(id), HttpStatusCode.Conflict, "already_voted");
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
    }

    [Fact]
    public async Task Setting_a_delegation_names_each_wrong_field()
    {
        async Task<JsonElement> Errors(string user, object body)
        {
            var response = await _app.Account(user).PutAsJsonAsync("/api/v1/me/delegation", body);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            return (await response.Json()).GetProperty("errors");
        }

        Assert.True((await Errors("alice", new { delegateTo = "Alice", until = Now.AddDays(1) })).TryGetProperty("delegateTo", out _));
        Assert.True((await Errors("alice", new { delegateTo = "nobody", until = Now.AddDays(1) })).TryGetProperty("delegateTo", out _));
        Assert.True((await Errors("alice", new { delegateTo = "oscar", until = Now.AddDays(1) })).TryGetProperty("delegateTo", out _));
        Assert.True((await Errors("alice", new { delegateTo = "carol", until = Now.AddDays(-1) })).TryGetProperty("until", out _));
        Assert.True((await Errors("alice", new { delegateTo = "carol", from = Now.AddDays(2), until = Now.AddDays(1) })).TryGetProperty("until", out _));
        Assert.True((await Errors("alice", new { delegateTo = "carol", until = Now.AddDays(400) })).TryGetProperty("until", out _));
        var oscar = await _app.Account("oscar").PutAsJsonAsync("/api/v1/me/delegation", new { delegateTo = "carol", until = Now.AddDays(1) });
        await AssertRefused(oscar, HttpStatusCode.Forbidden, "not_a_reviewer");

        await AwayAsync("alice", "carol");
        var mine = await (await _app.Account("alice").GetAsync("/api/v1/me/delegation")).Json();
        Assert.Equal("carol", mine.GetProperty("delegation").Str("delegateTo"));
        var carols = await (await _app.Account("carol").GetAsync("/api/v1/me/delegation")).Json();
        Assert.Equal(JsonValueKind.Null, carols.GetProperty("delegation").ValueKind);
        Assert.Equal("alice", Assert.Single(carols.GetProperty("decidingFor").EnumerateArray()).Str("user"));
        Assert.Equal(1, await _app.AuditCountAsync(null, "delegation_set"));
    }
}
