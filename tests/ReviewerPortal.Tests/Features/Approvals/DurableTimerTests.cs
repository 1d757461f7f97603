using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>Timers survive restarts and fire once with several app instances on one Redis.</summary>
public sealed class DurableTimerTests
{
    [Fact]
    public async Task A_timer_due_while_the_app_was_stopped_fires_once_after_restart()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
        var data = TestServers.NewTempDirectory("restart");
        var prefix = $"rs{Guid.NewGuid():N}:";
        string id;
        await using (var first = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix))
        {
            await Workflow.SetAsync(first, new { sla = "01:00:00", reminderInterval = "00:20:00", maxReminders = 1, timeoutOutcome = "reject" });
            id = (await first.Agent("acme").SubmitPayment()).Str("approvalId");
        }

        // Down for a day: the reminder and the timeout both fell due meanwhile.
        clock.Advance(TimeSpan.FromDays(1));
        await using var second = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix);
        var timers = second.Services.GetRequiredService<ExpiryService>();
        await timers.RunDueAsync(CancellationToken.None);
        await timers.RunDueAsync(CancellationToken.None);
        await timers.RunDueAsync(CancellationToken.None);

        Assert.Equal("rejected", (await Workflow.GetApprovalAsync(second, id)).Str("state"));
        Assert.Equal(1, await second.AuditCountAsync(id, "reminder_sent"));
        Assert.Equal(1, await second.AuditCountAsync(id, "timed_out"));
    }

    [Fact]
    public async Task Two_instances_on_one_redis_fire_every_timer_exactly_once()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
        var data = TestServers.NewTempDirectory("two-timers");
        var prefix = $"tt{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix);
        await using var b = await TestApp.StartAsync(clock, dataPath: data, keyPrefix: prefix);
        await Workflow.SetAsync(a, new
        {
            sla = "03:00:00", reminderInterval = "01:00:00", maxReminders = 2,
            escalation = new[] { new { approvers = new[] { "carol" }, sla = "02:00:00" } },
        });
        var ids = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add((await (i % 2 == 0 ? a : b).Agent("acme").SubmitPayment(i + 1)).Str("approvalId"));
        }

        var timersA = a.Services.GetRequiredService<ExpiryService>();
        var timersB = b.Services.GetRequiredService<ExpiryService>();
        for (var minute = 0; minute < 8 * 60; minute += 15)
        {
            clock.Advance(TimeSpan.FromMinutes(15));
            await Task.WhenAll(timersA.RunDueAsync(CancellationToken.None), timersB.RunDueAsync(CancellationToken.None),
                timersA.RunDueAsync(CancellationToken.None), timersB.RunDueAsync(CancellationToken.None));
        }

        foreach (var id in ids)
        {
            // Level 0: reminders at 1 h and 2 h, escalation at 3 h; level 1: reminder at 4 h, timeout at 5 h.
            Assert.Equal(3, await a.AuditCountAsync(id, "reminder_sent"));
            Assert.Equal(1, await a.AuditCountAsync(id, "escalated"));
            Assert.Equal(1, await a.AuditCountAsync(id, "timed_out"));
            Assert.Equal("rejected", (await Workflow.GetApprovalAsync(a, id)).Str("state"));
        }
    }
}
