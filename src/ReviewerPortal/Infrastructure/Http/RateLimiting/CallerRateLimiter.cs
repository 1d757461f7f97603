using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Infrastructure.Http.RateLimiting;

/// <summary>Which bucket a request draws from; set on the request by <see cref="RateLimitsSetup"/> before the limiter runs.</summary>
public sealed record RateLimitPartition(string Key, string Setting, string Who, RateLimit Limit);

/// <summary>
/// One token bucket per caller, in a <see cref="ConcurrentDictionary{TKey,TValue}"/>: a request takes only its own
/// bucket's lock, so one tenant's flood never waits on, or slows, another tenant's requests (the framework's
/// <c>PartitionedRateLimiter.Create</c> looks every partition up under one shared lock). No timers per bucket: a bucket
/// refills from the elapsed time when it is next used; idle full buckets are dropped every minute.
/// </summary>
public sealed class CallerRateLimiter : PartitionedRateLimiter<HttpContext>
{
    private static readonly RateLimitLease Granted = new Lease(true, null);

    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ITimer _sweeper;

    public CallerRateLimiter(TimeProvider time, IOptions<RateLimitOptions> options)
    {
        _time = time;
        Enabled = options.Value.Enabled;
        _sweeper = time.CreateTimer(_ => Sweep(), null, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
    }

    public bool Enabled { get; }

    /// <summary>Buckets held now (callers seen recently).</summary>
    public int Partitions => _buckets.Count;

    public override RateLimiterStatistics? GetStatistics(HttpContext resource) => null;

    protected override RateLimitLease AttemptAcquireCore(HttpContext resource, int permitCount)
    {
        if (!Enabled || resource.Features.Get<RateLimitPartition>() is not { } partition)
        {
            return Granted;
        }
        var bucket = _buckets.GetOrAdd(partition.Key, static (_, state) => new Bucket(state.Limit, state.Now),
            (partition.Limit, Now: _time.GetTimestamp()));
        return bucket.TryTake(Math.Max(1, permitCount), _time.GetTimestamp(), _time, out var retryAfter)
            ? Granted
            : new Lease(false, retryAfter);
    }

    // Never queues: a request over its limit is answered at once.
    protected override ValueTask<RateLimitLease> AcquireAsyncCore(HttpContext resource, int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(resource, permitCount));

    private void Sweep()
    {
        var now = _time.GetTimestamp();
        foreach (var entry in _buckets)
        {
            if (entry.Value.IsIdleAndFull(now, _time))
            {
                // Only if it is still the same bucket; a caller back right now simply gets a fresh, full one.
                _buckets.TryRemove(entry);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _sweeper.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class Bucket(RateLimit limit, long stamp)
    {
        private readonly Lock _gate = new();
        private readonly double _rate = limit.PermitsPerSecond;
        private readonly double _burst = limit.Burst;
        private double _tokens = limit.Burst;
        private long _stamp = stamp;

        public bool TryTake(int permits, long now, TimeProvider time, out TimeSpan retryAfter)
        {
            lock (_gate)
            {
                Refill(now, time);
                if (_tokens >= permits)
                {
                    _tokens -= permits;
                    retryAfter = TimeSpan.Zero;
                    return true;
                }
                retryAfter = TimeSpan.FromSeconds((permits - _tokens) / _rate);
                return false;
            }
        }

        public bool IsIdleAndFull(long now, TimeProvider time)
        {
            lock (_gate)
            {
                Refill(now, time);
                return _tokens >= _burst;
            }
        }

        private void Refill(long now, TimeProvider time)
        {
            var elapsed = time.GetElapsedTime(_stamp, now).TotalSeconds;
            if (elapsed > 0)
            {
                _tokens = Math.Min(_burst, _tokens + elapsed * _rate);
                _stamp = now;
            }
        }
    }

    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (retryAfter is { } value && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = value;
                return true;
            }
            metadata = null;
            return false;
        }
    }
}
