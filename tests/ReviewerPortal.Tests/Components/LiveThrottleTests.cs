using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Components.Shared;

namespace ReviewerPortal.Tests.Components;

public sealed class LiveThrottleTests
{
    [Fact]
    public async Task A_steady_stream_of_changes_still_reloads_once_per_interval()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));
        var reloads = 0;
        using var throttle = new LiveThrottle(TimeSpan.FromMilliseconds(150), () => { Interlocked.Increment(ref reloads); return Task.CompletedTask; },
            _ => Task.CompletedTask, clock);

        // A change every 50 ms for a second: a trailing debounce of 150 ms would never reload during it.
        for (var i = 0; i < 20; i++)
        {
            throttle.Signal();
            clock.Advance(TimeSpan.FromMilliseconds(50));
            await Task.Yield();
        }
        await WaitUntil(() => Volatile.Read(ref reloads) >= 5);
        Assert.InRange(reloads, 5, 8);
    }

    [Fact]
    public async Task A_burst_of_changes_within_one_interval_is_one_reload_and_a_later_change_is_another()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));
        var reloads = 0;
        using var throttle = new LiveThrottle(TimeSpan.FromMilliseconds(150), () => { Interlocked.Increment(ref reloads); return Task.CompletedTask; },
            _ => Task.CompletedTask, clock);

        for (var i = 0; i < 10; i++)
        {
            throttle.Signal();
        }
        clock.Advance(TimeSpan.FromMilliseconds(150));
        await WaitUntil(() => Volatile.Read(ref reloads) == 1);
        throttle.Signal();
        clock.Advance(TimeSpan.FromMilliseconds(150));
        await WaitUntil(() => Volatile.Read(ref reloads) == 2);
        clock.Advance(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        Assert.Equal(2, reloads);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(25);
        }
        Assert.True(condition());
    }
}
