using System.Reflection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Tests.Components;

/// <summary>N open queues reloading for one change share one read of the tenant's pending set; a change reads afresh.</summary>
public sealed class QueueReadsTests
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));

    [Fact]
    public async Task Ten_tabs_reloading_for_one_change_make_one_read_of_the_stats_and_of_each_range()
    {
        var (store, calls) = CountingStore.Create();
        var reads = new QueueReads(store, _clock);
        reads.Changed("acme");

        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => reads.StatsAsync("acme", _clock.GetUtcNow())));
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => reads.PendingRangeAsync("acme", 0, 50)));

        Assert.Equal(1, calls.Stats);
        Assert.Equal(1, calls.Ranges);
    }

    [Fact]
    public async Task A_change_of_the_tenant_reads_afresh_and_another_tenants_change_does_not()
    {
        var (store, calls) = CountingStore.Create();
        var reads = new QueueReads(store, _clock);

        await reads.StatsAsync("acme", _clock.GetUtcNow());
        reads.Changed("globex");
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(1, calls.Stats);

        reads.Changed("acme");
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(2, calls.Stats);

        // Nothing changes, but the age buckets move with the clock: shared for at most a second.
        _clock.Advance(QueueReads.MaxAge);
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(3, calls.Stats);
    }

    public sealed class Calls
    {
        public int Stats;
        public int Ranges;
    }

    /// <summary>An <see cref="IApprovalStore"/> that counts the queue reads (and has nothing else).</summary>
    public class CountingStore : DispatchProxy
    {
        private Calls _calls = new();

        public static (IApprovalStore Store, Calls Calls) Create()
        {
            var store = Create<IApprovalStore, CountingStore>();
            var calls = new Calls();
            ((CountingStore)(object)store)._calls = calls;
            return (store, calls);
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            switch (targetMethod?.Name)
            {
                case nameof(IApprovalStore.StatsAsync):
                    Interlocked.Increment(ref _calls.Stats);
                    return Task.FromResult(new QueueStats((string)args![0]!, 0, null, [], 0));
                case nameof(IApprovalStore.PendingRangeAsync):
                    Interlocked.Increment(ref _calls.Ranges);
                    return Task.FromResult<IReadOnlyList<Approval>>([]);
                default:
                    throw new NotSupportedException(targetMethod?.Name);
            }
        }
    }
}
