namespace ReviewerPortal.Components.Shared;

/// <summary>
/// Runs a page's reload at most once per <c>interval</c> while changes keep arriving, and always within one interval of
/// the first change it has not yet shown: a steady stream of changes never starves the reload (a trailing debounce that
/// restarts on every change would show nothing until the stream pauses). Changes that arrive while a reload is
/// scheduled are covered by it, since a reload reads the state as it is then; a change that arrives while a reload runs
/// schedules the next one.
/// </summary>
public sealed class LiveThrottle(TimeSpan interval, Func<Task> reload, Func<Exception, Task> failed, TimeProvider? time = null) : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private int _scheduled;

    /// <summary>A change arrived.</summary>
    public void Signal()
    {
        if (Interlocked.CompareExchange(ref _scheduled, 1, 0) == 0)
        {
            _ = RunAsync();
        }
    }

    private async Task RunAsync()
    {
        try
        {
            await Task.Delay(interval, _time, _stop.Token);
            Volatile.Write(ref _scheduled, 0);
            await reload();
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            await failed(ex);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }
}
