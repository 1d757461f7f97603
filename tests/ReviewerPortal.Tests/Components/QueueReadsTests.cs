using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>N open queues reloading for one change share one read of the tenant's pending set; a change reads afresh.</summary>
public sealed class QueueReadsTests
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2026-12-03T12:00:00Z"));

    /// <summary>A change feed that is only handed changes here (no Redis behind it).</summary>
    private readonly ChangeFeed _feed = new(null!, Microsoft.Extensions.Logging.Abstractions.NullLogger<ChangeFeed>.Instance);

    private void Changed(string tenant) =>
        _feed.Dispatch(new ApprovalChange(tenant, "apr_01JTEST0000000000000000000", ApprovalStates.Pending, "submitted", _clock.GetUtcNow(), null));

    [Fact]
    public async Task Ten_tabs_reloading_for_one_change_make_one_read_of_the_stats_and_of_each_range()
    {
        var (store, calls) = CountingStore.Create();
        var reads = new QueueReads(store, _feed, _clock);
        Changed("acme");

        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => reads.StatsAsync("acme", _clock.GetUtcNow())));
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => reads.PendingRangeAsync("acme", 0, 50)));

        Assert.Equal(1, calls.Stats);
        Assert.Equal(1, calls.Ranges);
    }

    [Fact]
    public async Task A_change_of_the_tenant_reads_afresh_and_another_tenants_change_does_not()
    {
        var (store, calls) = CountingStore.Create();
        var reads = new QueueReads(store, _feed, _clock);

        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Changed("globex");
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(1, calls.Stats);

        Changed("acme");
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(2, calls.Stats);

        // Nothing changes, but the age buckets move with the clock: shared for at most a second.
        _clock.Advance(QueueReads.MaxAge);
        await reads.StatsAsync("acme", _clock.GetUtcNow());
        Assert.Equal(3, calls.Stats);
    }

    /// <summary>
    /// The app's own wiring, real Garnet: open queues that read the moment a change reaches them get the new row, whatever
    /// the order in which the change feed calls its subscribers. (The load harness's raw circuits saw a few of 50 tabs
    /// show a new row only with the next change: a page called before the shared reads heard of the change got the
    /// answer read before it. With no next change, such a tab would never have shown the row.)
    /// </summary>
    [Fact]
    public async Task Every_open_queue_that_reloads_for_a_change_reads_the_new_row_whatever_the_order_of_subscribers()
    {
        await using var app = await TestApp.StartAsync(clock: _clock);
        var feed = app.Services.GetRequiredService<ChangeFeed>();
        var reads = app.Services.GetRequiredService<QueueReads>();
        // What every tab showed before the change: one shared answer, no pending row.
        Assert.Empty(await reads.PendingRangeAsync("acme", 0, 50));

        // 200 tabs, each reloading at once when a change of acme reaches it (a page's reload may run before the feed
        // has called the subscribers after it).
        const int tabs = 200;
        var reloads = new ConcurrentBag<Task<IReadOnlyList<Approval>>>();
        var all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var subscriptions = Enumerable.Range(0, tabs).Select(_ => feed.Subscribe(change =>
        {
            if (change.Tenant == "acme" && change.Action == "submitted")
            {
                reloads.Add(reads.PendingRangeAsync("acme", 0, 50));
                if (reloads.Count == tabs)
                {
                    all.TrySetResult();
                }
            }
        })).ToList();

        var id = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
        await all.Task.WaitAsync(TimeSpan.FromSeconds(10));

        var shown = await Task.WhenAll(reloads);
        Assert.All(shown, rows => Assert.Contains(rows, a => a.Id == id));
        subscriptions.ForEach(s => s.Dispose());
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
