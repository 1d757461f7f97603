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
        Assert.InRange(reloads, 5, 9);
    }

    [Fact]
    public async Task The_first_change_after_a_quiet_interval_reloads_at_once_and_changes_during_that_reload_follow_one_interval_later()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));
        var reloads = 0;
        using var throttle = new LiveThrottle(TimeSpan.FromMilliseconds(150), () => { Interlocked.Increment(ref reloads); return Task.CompletedTask; },
            _ => Task.CompletedTask, clock);

        // A reviewer's open queue shows a new approval without waiting out the interval when nothing else is arriving.
        throttle.Signal();
        await WaitUntil(() => Volatile.Read(ref reloads) == 1);

        // More changes within the interval: one more reload, when the interval since the last one is up (not before).
        throttle.Signal();
        throttle.Signal();
        clock.Advance(TimeSpan.FromMilliseconds(100));
        await Task.Delay(50);
        Assert.Equal(1, reloads);
        clock.Advance(TimeSpan.FromMilliseconds(50));
        await WaitUntil(() => Volatile.Read(ref reloads) == 2);

        // Quiet again for longer than the interval: the next change is shown at once.
        clock.Advance(TimeSpan.FromSeconds(1));
        throttle.Signal();
        await WaitUntil(() => Volatile.Read(ref reloads) == 3);
    }

    [Fact]
    public async Task A_burst_of_changes_is_a_reload_at_once_and_one_more_and_a_later_change_is_another()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));
        var reloads = 0;
        var firstRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var throttle = new LiveThrottle(TimeSpan.FromMilliseconds(150), async () =>
        {
            if (Interlocked.Increment(ref reloads) == 1)
            {
                firstRunning.SetResult();
                await releaseFirst.Task;
            }
        }, _ => Task.CompletedTask, clock);

        // The first change reloads at once; the nine that arrive while that reload runs are one more reload, an
        // interval after the first started. (Changes that arrive before the first reload starts are covered by it, so
        // the burst is sent once the first reload is under way: otherwise the count would depend on thread timing.)
        throttle.Signal();
        await firstRunning.Task.WaitAsync(TimeSpan.FromSeconds(10));
        for (var i = 0; i < 9; i++)
        {
            throttle.Signal();
        }
        releaseFirst.SetResult();
        await Task.Delay(50);
        Assert.Equal(1, reloads);
        clock.Advance(TimeSpan.FromMilliseconds(150));
        await WaitUntil(() => Volatile.Read(ref reloads) == 2);
        clock.Advance(TimeSpan.FromMilliseconds(150));
        throttle.Signal();
        await WaitUntil(() => Volatile.Read(ref reloads) == 3);
        clock.Advance(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        Assert.Equal(3, reloads);
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
