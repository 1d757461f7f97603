using System.Net;
using System.Net.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>Deadlines with a fake clock: days pass in milliseconds, nothing sleeps.</summary>
public sealed class ExpiryTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ExpiryService Timers => _app.Services.GetRequiredService<ExpiryService>();

    [Fact]
    public async Task Pending_approval_past_its_ttl_expires_and_the_audit_says_so()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        _clock.Advance(TimeSpan.FromHours(23));
        await Timers.RunDueAsync(CancellationToken.None);
        Assert.Equal("pending", await StateOf(id));

        _clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));
        await Timers.RunDueAsync(CancellationToken.None);

        Assert.Equal("expired", await StateOf(id));
        await using var scope = _app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var expired = await db.AuditEntries.SingleAsync(e => e.ApprovalId == id && e.Action == "expired");
        Assert.Equal("system", expired.Actor);
        Assert.Equal("pending", expired.FromState);
        Assert.Equal("expired", expired.ToState);
    }

    [Fact]
    public async Task Expiry_is_recorded_once_when_the_timer_runs_twice()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        _clock.Advance(TimeSpan.FromDays(2));

        await Task.WhenAll(Timers.RunDueAsync(CancellationToken.None), Timers.RunDueAsync(CancellationToken.None));
        await Timers.RunDueAsync(CancellationToken.None);

        Assert.Equal(1, await _app.AuditCountAsync(id, "expired"));
    }

    [Fact]
    public async Task Approve_after_the_deadline_is_409_expired_even_before_the_timer_ran()
    {
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        _clock.Advance(TimeSpan.FromHours(25));

        var response = await _app.Account("alice").Approve(id);

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("expired", (await response.Json()).Str("code"));
        Assert.Equal("expired", await StateOf(id));
    }

    [Fact]
    public async Task Tenant_ttl_applies_to_new_approvals_and_a_long_poll_sees_the_expiry()
    {
        var ada = _app.Account("ada");
        var put = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvalTtl = "00:10:00" });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var submitted = await _app.Agent("acme").SubmitPayment();
        Assert.Equal(_clock.GetUtcNow() + TimeSpan.FromMinutes(10), submitted.GetProperty("expiresAt").GetDateTimeOffset(), TimeSpan.FromSeconds(1));

        _clock.Advance(TimeSpan.FromMinutes(11));
        var waiting = _app.Agent("acme").GetAsync($"/api/v1/approvals/{submitted.Str("approvalId")}/decision?waitSeconds=60");
        await Timers.RunDueAsync(CancellationToken.None);

        Assert.Equal("expired", (await (await waiting).Json()).Str("state"));
    }

    [Theory]
    [InlineData("00:00:30")]
    [InlineData("31.00:00:00")]
    [InlineData("soon")]
    public async Task Ttl_outside_one_minute_to_thirty_days_is_400_and_changes_nothing(string ttl)
    {
        var ada = _app.Account("ada");
        var response = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvalTtl = ttl });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("approvalTtl", out _));
        var settings = await (await ada.GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(86400, settings.GetProperty("approvalTtlSeconds").GetInt64());
    }

    [Fact]
    public async Task Only_admins_change_settings()
    {
        var response = await _app.Account("alice").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvalTtl = "01:00:00" });
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    private async Task<string> StateOf(string id) =>
        (await (await _app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state");
}
