using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>
/// The app's clock: this machine's clock corrected to the Redis server's (<c>TIME</c>), so every instance of a fleet
/// compares deadlines against one clock even when their own clocks disagree. The offset is measured at start and every
/// <see cref="SyncInterval"/> (the round trip's midpoint against the server's answer); timers and stopwatches stay on
/// the local clock. Tests replace the app's <see cref="TimeProvider"/> with a fake one and skip days with it.
/// </summary>
public sealed class RedisServerClock(RedisConnection redis, TimeProvider local, ILogger<RedisServerClock> logger) : TimeProvider
{
    public static readonly TimeSpan SyncInterval = TimeSpan.FromSeconds(30);

    /// <summary>A skew past this is worth an operator's attention (NTP is off on some machine).</summary>
    public static readonly TimeSpan NotableSkew = TimeSpan.FromSeconds(2);

    private long _offsetTicks;

    /// <summary>The Redis server's clock minus this machine's, as last measured.</summary>
    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    /// <summary>When the offset was last measured (null: never, the local clock is used as it is).</summary>
    public DateTimeOffset? SyncedAt { get; private set; }

    public override DateTimeOffset GetUtcNow() => local.GetUtcNow() + Offset;

    public override long GetTimestamp() => local.GetTimestamp();

    public override long TimestampFrequency => local.TimestampFrequency;

    public override TimeZoneInfo LocalTimeZone => local.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        local.CreateTimer(callback, state, dueTime, period);

    /// <summary>Measures the offset to the Redis server's clock once.</summary>
    public async Task SyncAsync()
    {
        var before = local.GetUtcNow();
        var reply = (RedisResult[])(await redis.Database.ExecuteAsync("TIME"))!;
        var after = local.GetUtcNow();
        var server = DateTimeOffset.FromUnixTimeSeconds((long)reply[0]).AddTicks((long)reply[1] * 10);
        var offset = server - (before + (after - before) / 2);
        var previous = Offset;
        Interlocked.Exchange(ref _offsetTicks, offset.Ticks);
        SyncedAt = server;
        if (offset.Duration() >= NotableSkew && (previous - offset).Duration() >= TimeSpan.FromMilliseconds(500))
        {
            logger.LogWarning("This machine's clock is {Offset} behind the Redis server's; deadlines use the server's clock", offset);
        }
    }
}

/// <summary>Keeps <see cref="RedisServerClock"/> in step with the Redis server.</summary>
public sealed class RedisServerClockSync(RedisServerClock clock, ILogger<RedisServerClockSync> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Wall time on purpose: this paces the measurement, it is not domain time.
        using var timer = new PeriodicTimer(RedisServerClock.SyncInterval, TimeProvider.System);
        do
        {
            try
            {
                await clock.SyncAsync();
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidOperationException)
            {
                logger.LogWarning("The Redis server's clock could not be read ({Message}); the last offset stays", ex.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
