namespace ReviewerPortal.Features.Reading;

/// <summary>
/// One timer per page (scoped: one per circuit) that tells every shown relative time to re-render every
/// <see cref="Interval"/>; it runs only while something listens and ends with the circuit.
/// </summary>
public sealed class RelativeTimeTicker(TimeProvider time) : IDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    private readonly Lock _gate = new();
    private readonly List<Action> _listeners = [];
    private ITimer? _timer;

    public int Subscribers
    {
        get
        {
            lock (_gate)
            {
                return _listeners.Count;
            }
        }
    }

    public bool Running
    {
        get
        {
            lock (_gate)
            {
                return _timer is not null;
            }
        }
    }

    public IDisposable Subscribe(Action onTick)
    {
        lock (_gate)
        {
            _listeners.Add(onTick);
            _timer ??= time.CreateTimer(_ => Tick(), null, Interval, Interval);
        }
        return new Subscription(this, onTick);
    }

    private void Tick()
    {
        Action[] listeners;
        lock (_gate)
        {
            listeners = [.. _listeners];
        }
        foreach (var listener in listeners)
        {
            listener();
        }
    }

    private void Unsubscribe(Action onTick)
    {
        ITimer? stop = null;
        lock (_gate)
        {
            _listeners.Remove(onTick);
            if (_listeners.Count == 0)
            {
                (stop, _timer) = (_timer, null);
            }
        }
        stop?.Dispose();
    }

    public void Dispose()
    {
        ITimer? stop;
        lock (_gate)
        {
            _listeners.Clear();
            (stop, _timer) = (_timer, null);
        }
        stop?.Dispose();
    }

    private sealed class Subscription(RelativeTimeTicker ticker, Action onTick) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                ticker.Unsubscribe(onTick);
            }
        }
    }
}
