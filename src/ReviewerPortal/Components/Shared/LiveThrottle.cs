namespace ReviewerPortal.Components.Shared;

/// <summary>
/// Runs a page's reload at most once per <c>interval</c> while changes keep arriving, and always within one interval of
/// the first change it has not yet shown: the first change after a quiet interval reloads at once (an open queue shows a
/// new approval as soon as it is read, not an interval later), and a steady stream of changes never starves the reload
/// (a trailing debounce that restarts on every change would show nothing until the stream pauses). Changes that arrive
/// while a reload is scheduled are covered by it, since a reload reads the state as it is then; a change that arrives
/// while a reload runs schedules the next one, an interval after that reload started.
/// </summary>
public sealed class LiveThrottle(TimeSpan interval, Func<Task> reload, Func<Exception, Task> failed, TimeProvider? time = null) : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private int _scheduled;
    /// <summary>When the last reload started (<see cref="TimeProvider.GetTimestamp"/>); 0 before the first.</summary>
    private long _lastStarted;

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
            var last = Interlocked.Read(ref _lastStarted);
            var wait = last == 0 ? TimeSpan.Zero : interval - _time.GetElapsedTime(last);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, _stop.Token);
            }
            else
            {
                // Off the caller's thread: the change feed signals every open page in turn and must not wait on any.
                await Task.Yield();
            }
            if (_stop.IsCancellationRequested)
            {
                return;
            }
            Interlocked.Exchange(ref _lastStarted, _time.GetTimestamp());
            Volatile.Write(ref _scheduled, 0);
            await reload();
        }
        catch (OperationCanceledException)
        {
        }
        catch (ObjectDisposedException) when (_stop.IsCancellationRequested)
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
