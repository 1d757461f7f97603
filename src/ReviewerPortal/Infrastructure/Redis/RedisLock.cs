using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>
/// A lease lock in Redis: <c>SET key token NX PX lease</c>, released only by the token's holder.
/// A busy lock is retried with jittered back-off until the wait budget runs out.
/// </summary>
/// <remarks>
/// The back-off measures wall time with <see cref="TimeProvider.System"/> on purpose: it paces network retries and
/// is not domain time, so a test's fake clock must not freeze it.
/// </remarks>
public sealed class RedisLockFactory(RedisConnection redis, IOptions<RedisOptions> options, Features.Observability.PortalMetrics? metrics = null)
{
    /// <param name="lease">How long the lock holds unless released; default <c>Redis:LockLease</c>. Work that may take longer
    /// (a webhook call with its timeout) asks for a lease that outlasts it, so no second holder can start it meanwhile.</param>
    public async Task<RedisLock?> TryAcquireAsync(RedisKey key, CancellationToken cancellationToken, TimeSpan? waitBudget = null, TimeSpan? lease = null)
    {
        var db = redis.Database;
        var token = Guid.NewGuid().ToString("N");
        var leaseFor = lease ?? options.Value.LockLease;
        var budget = waitBudget ?? options.Value.LockWaitBudget;
        var started = TimeProvider.System.GetTimestamp();
        var delay = 1;
        while (true)
        {
            if (await db.StringSetAsync(key, token, leaseFor, When.NotExists))
            {
                metrics?.LockWaited(TimeProvider.System.GetElapsedTime(started), acquired: true);
                return new RedisLock(db, key, token);
            }
            if (TimeProvider.System.GetElapsedTime(started) >= budget)
            {
                metrics?.LockWaited(TimeProvider.System.GetElapsedTime(started), acquired: false);
                return null;
            }
            await Task.Delay(TimeSpan.FromMilliseconds(delay + Random.Shared.Next(delay + 1)), cancellationToken);
            delay = Math.Min(delay * 2, 20);
        }
    }
}

public sealed class RedisLock(IDatabase db, RedisKey key, string token) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        try
        {
            await db.ScriptEvaluateAsync(LuaScripts.Unlock, [key], [token]);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The guarded work is done and stands; the lease runs out by itself.
        }
    }
}
