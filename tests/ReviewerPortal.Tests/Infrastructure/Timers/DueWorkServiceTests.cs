using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Infrastructure.Timers;

namespace ReviewerPortal.Tests.Infrastructure.Timers;

/// <summary>
/// The pass loop of the dispatcher, the expiry timers and the notifier. A pass asked for while the instance's own
/// background pass runs waits for that pass and then runs: when it returns, what was due when it was asked for has
/// been done on this instance, not left half-done under a lock of the pass beside it.
/// </summary>
public sealed class DueWorkServiceTests
{
    /// <summary>A pass that takes as long as the test says, counting how many run at once.</summary>
    private sealed class GatedService(WakeSignal signal, TimeProvider time) : DueWorkService(signal, time, NullLogger.Instance)
    {
        private int _running;

        public TaskCompletionSource FirstPassStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Passes;
        public int MostAtOnce;

        protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _running);
            InterlockedMax(ref MostAtOnce, now);
            Interlocked.Increment(ref Passes);
            FirstPassStarted.TrySetResult();
            await Gate.Task.WaitAsync(cancellationToken);
            Interlocked.Decrement(ref _running);
            return null;
        }

        private static void InterlockedMax(ref int target, int value)
        {
            int seen;
            while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
            {
            }
        }
    }

    [Fact]
    public async Task A_pass_asked_for_while_the_background_pass_runs_waits_for_it_then_runs()
    {
        var service = new GatedService(new WakeSignal(), new FakeTimeProvider(DateTimeOffset.Parse("2026-12-05T10:00:00Z")));
        using var stop = new CancellationTokenSource();
        await service.StartAsync(stop.Token);
        await service.FirstPassStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var asked = service.RunDueAsync(CancellationToken.None);
        await Task.Delay(200);

        Assert.False(asked.IsCompleted); // the background pass is still running: this one has not run past it
        Assert.Equal(1, Volatile.Read(ref service.Passes));
        service.Gate.SetResult();
        await asked.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(2, Volatile.Read(ref service.Passes));
        Assert.Equal(1, service.MostAtOnce);
        await stop.CancelAsync();
        await service.StopAsync(CancellationToken.None);
    }
}
