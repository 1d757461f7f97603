namespace ReviewerPortal.Infrastructure.Timers;

/// <summary>Waits between attempts at something that keeps failing (a webhook, a mail server).</summary>
public static class Backoff
{
    /// <summary><paramref name="first"/> after the first failed attempt, doubling with each one after, never more than <paramref name="max"/>.</summary>
    public static TimeSpan Exponential(long attempt, TimeSpan first, TimeSpan max) =>
        TimeSpan.FromSeconds(Math.Min(max.TotalSeconds, first.TotalSeconds * Math.Pow(2, Math.Clamp(attempt - 1, 0, 30))));
}

/// <summary>A wake-up call for a <see cref="DueWorkService"/>: new work may be due before its next timer.</summary>
public class WakeSignal
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Wake()
    {
        try
        {
            if (_signal.CurrentCount == 0)
            {
                _signal.Release();
            }
        }
        catch (SemaphoreFullException)
        {
        }
    }

    /// <summary>Waits for <paramref name="timeout"/> on <paramref name="time"/>'s clock, or less when woken.</summary>
    public async Task WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timer.Token, cancellationToken);
        try
        {
            await _signal.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The timer ran out: time to look again.
        }
    }
}

/// <summary>
/// A background service driven by the store's own due times (no fixed polling interval): it runs what is due,
/// sleeps until the next due time (at most <see cref="MaxSleep"/>, so a lost wake-up delays work by at most that),
/// and wakes early when signalled. The clock is the injected <see cref="TimeProvider"/>, so tests skip time.
/// </summary>
public abstract class DueWorkService(WakeSignal signal, TimeProvider time, ILogger logger) : BackgroundService
{
    public static readonly TimeSpan MaxSleep = TimeSpan.FromMinutes(1);

    protected TimeProvider Time => time;

    protected virtual bool Enabled => true;

    /// <summary>When this service was created (the readiness probe's bound counts from here until the first pass).</summary>
    public DateTimeOffset CreatedAt { get; } = time.GetUtcNow();

    /// <summary>When the last pass completed (null before the first): the readiness probe's sign of life.</summary>
    public DateTimeOffset? LastPassAt { get; private set; }

    /// <summary>Runs what is due now; returns when the next work falls due (null: nothing scheduled).</summary>
    protected abstract Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken);

    /// <summary>One pass at a time on this instance (other instances are kept off an item by its lock).</summary>
    private readonly SemaphoreSlim _pass = new(1, 1);

    /// <summary>
    /// Runs what is due; returns how long to sleep until the next due work. Asked for while this instance's pass
    /// runs, it waits for that pass and then makes its own: when it returns, what was due when it was asked for is
    /// done here, not left under the lock of a pass beside it (which a second pass would only have skipped).
    /// </summary>
    public async Task<TimeSpan> RunDueAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? next;
        await _pass.WaitAsync(cancellationToken);
        try
        {
            next = await RunOnceAsync(cancellationToken);
            LastPassAt = time.GetUtcNow();
        }
        finally
        {
            _pass.Release();
        }
        if (next is null)
        {
            return MaxSleep;
        }
        var wait = next.Value - time.GetUtcNow();
        // Work still due here is held by another instance's lock: look again shortly.
        return wait <= TimeSpan.Zero ? TimeSpan.FromMilliseconds(50) : wait < MaxSleep ? wait : MaxSleep;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan sleep;
            try
            {
                sleep = await RunDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "{Service} pass failed; retrying shortly", GetType().Name);
                sleep = TimeSpan.FromSeconds(1);
            }
            await signal.WaitAsync(sleep, time, stoppingToken);
        }
    }

    /// <summary>The earlier of two optional due times.</summary>
    protected static DateTimeOffset? Earliest(DateTimeOffset? a, DateTimeOffset? b) =>
        a is null ? b : b is null ? a : a < b ? a : b;
}
