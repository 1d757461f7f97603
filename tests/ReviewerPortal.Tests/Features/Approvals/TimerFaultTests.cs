using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// A timer that cannot fire (a settings change it no longer fits, a damaged record) never stops another timer or
/// tenant: it falls through where it can, and otherwise is audited as <c>timer_failed</c> and retried with back-off.
/// </summary>
public sealed class TimerFaultTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ExpiryService Timers => _app.Services.GetRequiredService<ExpiryService>();

    private async Task PassAsync(TimeSpan span)
    {
        _clock.Advance(span);
        await Timers.RunDueAsync(CancellationToken.None);
    }

    [Fact]
    public async Task An_escalation_level_removed_while_pending_falls_through_to_the_timeout_and_other_tenants_still_expire()
    {
        await Workflow.SetAsync(_app, new { sla = "01:00:00", escalation = new[] { new { approvers = new[] { "carol" }, sla = "02:00:00" } } });
        var acme = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var globex = (await _app.Agent("globex").SubmitPayment()).Str("approvalId");
        Assert.Equal("escalation", (await Workflow.GetApprovalAsync(_app, acme)).GetProperty("nextTimer").Str("kind"));

        // The admin removes the level the pending approval is due to reach.
        await Workflow.SetAsync(_app, new { escalation = Array.Empty<object>() });

        await PassAsync(TimeSpan.FromHours(1));
        var timedOut = await Workflow.GetApprovalAsync(_app, acme);
        Assert.Equal("rejected", timedOut.Str("state"));
        Assert.Equal(1, await _app.AuditCountAsync(acme, "timed_out"));
        Assert.Equal(0, await _app.AuditCountAsync(acme, "escalated"));

        await PassAsync(TimeSpan.FromHours(24));
        Assert.Equal("expired", (await Workflow.GetApprovalAsync(_app, globex, "globex")).Str("state"));
    }

    [Fact]
    public async Task A_damaged_record_is_audited_as_timer_failed_retried_later_and_blocks_no_other_timer()
    {
        var redis = _app.Services.GetRequiredService<RedisConnection>().Database;
        var globex = (await _app.Agent("globex").SubmitPayment()).Str("approvalId");
        var other = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        // A record that cannot be read back (fields missing), with timers due before everyone else's.
        const string poison = "apr_01JZZZZZZZZZZZZZZZZZZZZZZZ";
        await redis.HashSetAsync(RedisKeys.Approval("acme", poison), [new("state", "pending"), new("seq", "3")]);
        await redis.KeyExpireAsync(RedisKeys.Approval("acme", poison), TimeSpan.FromHours(1));
        var early = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        await redis.SortedSetAddAsync(RedisKeys.Timers("acme"), RedisKeys.StepTimer(poison), early);
        await redis.SortedSetAddAsync(RedisKeys.Timers("acme"), RedisKeys.ExpireTimer(poison), early);

        await PassAsync(TimeSpan.FromHours(24) + TimeSpan.FromSeconds(1));

        Assert.Equal("expired", (await Workflow.GetApprovalAsync(_app, globex, "globex")).Str("state"));
        Assert.Equal("expired", (await Workflow.GetApprovalAsync(_app, other)).Str("state"));
        Assert.Equal(2, await _app.AuditCountAsync(poison, "timer_failed"));
        // Retried later with back-off, not in a hot loop, and not dropped.
        var retryAt = await redis.SortedSetScoreAsync(RedisKeys.Timers("acme"), RedisKeys.StepTimer(poison));
        Assert.NotNull(retryAt);
        Assert.True(retryAt > _clock.GetUtcNow().ToUnixTimeMilliseconds());

        // A second pass before the back-off ran out fires nothing again.
        await PassAsync(TimeSpan.FromMilliseconds(100));
        Assert.Equal(2, await _app.AuditCountAsync(poison, "timer_failed"));
    }
}
