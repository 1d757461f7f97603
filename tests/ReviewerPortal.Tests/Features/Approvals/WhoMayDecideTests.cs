using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>Four eyes cannot be bypassed by spelling, and only reviewers decide (security pass: who may decide).</summary>
public sealed class WhoMayDecideTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Theory]
    [InlineData("Alice")]
    [InlineData(" alice ")]
    [InlineData("ALICE")]
    [InlineData("alice@acme")]
    [InlineData("Alice@Example.Invalid")] // alice's account e-mail
    public async Task The_requester_may_not_approve_their_own_request_however_their_name_is_spelled(string requestedBy)
    {
        var submitted = await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = "INV-9", amount = 9 },
            requestedBy,
        });
        var id = (await submitted.Json()).Str("approvalId");

        var own = await _app.Account("alice").Approve(id);

        Assert.Equal(HttpStatusCode.Forbidden, own.StatusCode);
        Assert.Equal("requester_may_not_approve", (await own.Json()).Str("code"));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("bob").Approve(id)).StatusCode);
    }

    [Fact]
    public async Task Approver_lists_and_escalation_levels_take_only_reviewer_accounts_and_name_each_wrong_entry()
    {
        var put = await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            approvers = new[] { "alice", "nobody", "oscar", "<img src=x onerror=alert(1)>" },
            escalation = new[] { new { approvers = new[] { "carol", "ada" }, sla = "1h" } },
            sla = "1h",
        });

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        var errors = (await put.Json()).GetProperty("errors");
        foreach (var field in new[] { "approvers[1]", "approvers[2]", "approvers[3]", "escalation[0].approvers[1]" })
        {
            Assert.True(errors.TryGetProperty(field, out _), $"{field} in {errors}");
        }
        Assert.False(errors.TryGetProperty("approvers[0]", out _));
        Assert.False(errors.TryGetProperty("escalation[0].approvers[0]", out _));
        var settings = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(["alice", "bob"], settings.GetProperty("approvers").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public async Task An_on_call_or_admin_account_listed_as_approver_still_decides_nothing()
    {
        // Lists from before this rule (configuration, an older version) may still name them.
        var settings = _app.Services.GetRequiredService<ReviewerPortal.Features.Tenants.TenantStore>();
        var acme = (await settings.GetSettingsAsync("acme"))!;
        var audit = _app.Services.GetRequiredService<ReviewerPortal.Features.Audit.AuditLog>();
        await settings.UpdateAsync(acme with { Approvers = ["alice", "bob", "oscar", "ada"] },
            ReviewerPortal.Features.Audit.AuditLog.Serialize(audit.NewEntry("acme", "system:test", "settings_changed")));
        var id = (await _app.Agent("acme").SubmitPayment(5)).Str("approvalId");

        foreach (var who in new[] { "oscar", "ada" })
        {
            var decided = await _app.Account(who).Approve(id);
            Assert.Equal(HttpStatusCode.Forbidden, decided.StatusCode);
            Assert.Equal("not_an_approver", (await decided.Json()).Str("code"));
        }
        Assert.Equal("pending", (await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state"));
    }
}
