using System.Collections.Concurrent;
using System.Text.Json;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>One transition, as announced to every app instance. <see cref="ExpiresAt"/>: the approval's next due timer, if any.</summary>
public sealed record ApprovalChange(string Tenant, string ApprovalId, string State, string Action, DateTimeOffset At, DateTimeOffset? ExpiresAt);

/// <summary>
/// The change feed: every transition is published on one Redis channel and reaches every app instance, where this
/// singleton hands it to local subscribers (pages, the timer service) and wakes long-polls waiting on that approval.
/// </summary>
public sealed class ChangeFeed(RedisConnection redis, ILogger<ChangeFeed> logger) : IHostedService
{
    private readonly ConcurrentDictionary<Guid, Action<ApprovalChange>> _subscribers = new();
    private readonly ConcurrentDictionary<string, long> _generations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Guid, TaskCompletionSource<ApprovalChange>>> _waiters = new();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = await redis.Multiplexer.GetSubscriber().SubscribeAsync(RedisKeys.Changes);
        queue.OnMessage(message =>
        {
            try
            {
                var change = JsonSerializer.Deserialize((string)message.Message!, AppJsonContext.Default.ApprovalChange);
                if (change is not null)
                {
                    Dispatch(change);
                }
            }
            catch (JsonException ex)
            {
                logger.LogWarning(ex, "Ignored a malformed change message");
            }
        });
    }

    public Task StopAsync(CancellationToken cancellationToken) => RedisConnection.UnsubscribeQuietlyAsync(redis, RedisKeys.Changes);

    /// <summary>Announces a transition to every instance. Best effort: state lives in Redis, not in the message.</summary>
    public async Task PublishAsync(ApprovalChange change)
    {
        try
        {
            await redis.Multiplexer.GetSubscriber().PublishAsync(RedisKeys.Changes,
                JsonSerializer.Serialize(change, AppJsonContext.Default.ApprovalChange));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning(ex, "Could not announce {Action} of {ApprovalId}", change.Action, change.ApprovalId);
            Dispatch(change);
        }
    }

    /// <summary>
    /// How many changes of <paramref name="tenant"/> this instance has heard of. It moves before any subscriber is
    /// called, so a read cached under an older value is known to predate the change, whichever subscriber runs first.
    /// </summary>
    public long Generation(string tenant) => _generations.GetValueOrDefault(tenant);

    public IDisposable Subscribe(Action<ApprovalChange> handler)
    {
        var id = Guid.NewGuid();
        _subscribers[id] = handler;
        return new Subscription(() => _subscribers.TryRemove(id, out _));
    }

    /// <summary>
    /// Registers interest in the next change of one approval. Register first, then read the state, then await:
    /// a change between the read and the await is not missed.
    /// </summary>
    public Waiter Watch(string tenant, string approvalId)
    {
        var key = tenant + "/" + approvalId;
        var id = Guid.NewGuid();
        var source = new TaskCompletionSource<ApprovalChange>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiters.GetOrAdd(key, _ => new())[id] = source;
        return new Waiter(source.Task, () =>
        {
            if (_waiters.TryGetValue(key, out var set))
            {
                set.TryRemove(id, out _);
                if (set.IsEmpty)
                {
                    _waiters.TryRemove(new KeyValuePair<string, ConcurrentDictionary<Guid, TaskCompletionSource<ApprovalChange>>>(key, set));
                }
            }
        });
    }

    /// <summary>Hands a change that reached this instance to its waiters and subscribers (internal for tests).</summary>
    internal void Dispatch(ApprovalChange change)
    {
        _generations.AddOrUpdate(change.Tenant, 1, static (_, g) => g + 1);
        if (_waiters.TryGetValue(change.Tenant + "/" + change.ApprovalId, out var set))
        {
            foreach (var waiter in set.Values)
            {
                waiter.TrySetResult(change);
            }
        }
        foreach (var subscriber in _subscribers.Values)
        {
            try
            {
                subscriber(change);
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "A change subscriber failed");
            }
        }
    }

    public sealed class Waiter(Task<ApprovalChange> changed, Action dispose) : IDisposable
    {
        public Task<ApprovalChange> Changed => changed;

        public void Dispose() => dispose();
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
