using System.Collections.Concurrent;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Components.Pages.Queue;

/// <summary>
/// The queue pages' reads of a tenant's pending set (stats and row ranges), shared by every open circuit of this
/// instance: when a change of the tenant makes N open queues reload, the first reload reads Redis and the other N - 1
/// share its answer (one read in flight per tenant and range), so the cost of a change no longer grows with the tabs.
/// An answer is shared only while no change of its tenant has arrived since its read began and for at most
/// <see cref="MaxAge"/> (the age buckets move with the clock), so a reload after a change always reads afresh: the
/// change feed counts a tenant's changes before it calls any page (<see cref="ChangeFeed.Generation"/>), so a page
/// called first cannot be handed the answer read before its change.
/// </summary>
public sealed class QueueReads(IApprovalStore store, ChangeFeed changes, TimeProvider time)
{
    /// <summary>How long an answer is shared when nothing changes.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private const int MaxEntries = 4096;
    private readonly ConcurrentDictionary<(string Tenant, int Start, int Count), Entry<IReadOnlyList<Approval>>> _ranges = new();
    private readonly ConcurrentDictionary<string, Entry<QueueStats>> _stats = new(StringComparer.Ordinal);

    private sealed record Entry<T>(long Generation, DateTimeOffset ReadAt, Task<T> Answer);

    public Task<QueueStats> StatsAsync(string tenant, DateTimeOffset now) =>
        Shared(_stats, tenant, tenant, now, () => store.StatsAsync(tenant, now));

    public Task<IReadOnlyList<Approval>> PendingRangeAsync(string tenant, int start, int count) =>
        Shared(_ranges, (tenant, start, count), tenant, time.GetUtcNow(), () => store.PendingRangeAsync(tenant, start, count));

    private Task<T> Shared<TKey, T>(ConcurrentDictionary<TKey, Entry<T>> cache, TKey key, string tenant, DateTimeOffset now, Func<Task<T>> read)
        where TKey : notnull
    {
        var generation = changes.Generation(tenant);
        if (cache.TryGetValue(key, out var entry) && entry.Generation == generation && now >= entry.ReadAt && now - entry.ReadAt < MaxAge
            && !entry.Answer.IsFaulted && !entry.Answer.IsCanceled)
        {
            return entry.Answer;
        }
        if (cache.Count >= MaxEntries)
        {
            cache.Clear();
        }
        var fresh = new Entry<T>(generation, now, read());
        cache[key] = fresh;
        return fresh.Answer;
    }
}
