using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Observability;

/// <summary>One tenant's fleet-wide figures as Redis holds them: what the gauges report and the on-call board shows.</summary>
public sealed record TenantOperations(
    string Tenant,
    long Pending,
    long OutboxDepth,
    TimeSpan? OutboxOldestAge,
    IReadOnlyDictionary<string, long> Counters)
{
    /// <summary>False for the accounts' audit stream (<c>_accounts</c>), which has an audit outbox but no approvals or counters.</summary>
    public bool IsTenant => Tenant != Auth.AccountAudit.Stream;
}

/// <summary>
/// The one source of the fleet-wide figures (pending per tenant, the audit outbox's depth and oldest entry, the
/// control-plane counters of <see cref="Counters"/>): read from Redis by <see cref="RefreshAsync"/> in one pipelined
/// round trip for all tenants (a few O(1) commands each, never a scan), at most every <c>Metrics:RefreshInterval</c> in
/// the background. A scrape reads the cached <see cref="Latest"/> and costs Redis nothing; the on-call board and the
/// readiness probe ask for figures no older than they need.
/// </summary>
public sealed class OperationsSnapshot(
    Tenants.TenantStore tenants,
    RedisConnection redis,
    TimeProvider time,
    IOptions<TelemetryOptions> options,
    ILogger<OperationsSnapshot> logger) : BackgroundService
{
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private volatile IReadOnlyList<TenantOperations> _latest = [];
    private DateTimeOffset? _at;
    private long? _readAt; // a Stopwatch timestamp: freshness is pacing, not domain time (a test's fake clock must not freeze it)

    /// <summary>The figures of the last refresh (empty before the first).</summary>
    public IReadOnlyList<TenantOperations> Latest => _latest;

    /// <summary>When <see cref="Latest"/> was read.</summary>
    public DateTimeOffset? At => _at;

    /// <summary>The figures, read again first when they are older than <paramref name="maxAge"/> (concurrent callers share one read).</summary>
    public async Task<IReadOnlyList<TenantOperations>> GetAsync(TimeSpan maxAge, CancellationToken cancellationToken = default)
    {
        if (IsFresh(maxAge))
        {
            return _latest;
        }
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (IsFresh(maxAge))
            {
                return _latest;
            }
            return await ReadAsync();
        }
        finally
        {
            _refresh.Release();
        }
    }

    private bool IsFresh(TimeSpan maxAge) =>
        maxAge > TimeSpan.Zero && _readAt is { } read && System.Diagnostics.Stopwatch.GetElapsedTime(read) <= maxAge;

    /// <summary>Reads every tenant's figures now (throws when Redis does not answer; the previous figures stay).</summary>
    public Task<IReadOnlyList<TenantOperations>> RefreshAsync(CancellationToken cancellationToken = default) =>
        GetAsync(TimeSpan.Zero, cancellationToken);

    private async Task<IReadOnlyList<TenantOperations>> ReadAsync()
    {
        var now = time.GetUtcNow();
        // The tenants, and the accounts' audit stream, which has an outbox of its own.
        IReadOnlyList<string> names = [.. await tenants.ListAsync(), Auth.AccountAudit.Stream];
        var batch = redis.Database.CreateBatch();
        var reads = names.Select(tenant => (
            Tenant: tenant,
            Pending: batch.SortedSetLengthAsync(RedisKeys.StateSet(tenant, ApprovalStates.Pending)),
            Depth: batch.ListLengthAsync(RedisKeys.AuditOutbox(tenant)),
            Oldest: batch.ListGetByIndexAsync(RedisKeys.AuditOutbox(tenant), -1), // LPUSH: the oldest is last
            Counters: batch.HashGetAllAsync(RedisKeys.Stats(tenant)))).ToList();
        batch.Execute();
        await Task.WhenAll(reads.SelectMany(r => new Task[] { r.Pending, r.Depth, r.Oldest, r.Counters }));
        var figures = reads.Select(r =>
        {
            var stored = r.Counters.Result.ToDictionary(e => (string)e.Name!, e => (long)e.Value);
            return new TenantOperations(r.Tenant, r.Pending.Result, r.Depth.Result, OldestAge(r.Oldest.Result, now),
                Approvals.Counters.All.ToDictionary(name => name, name => stored.GetValueOrDefault(name)));
        }).ToList();
        _latest = figures;
        _at = now;
        _readAt = System.Diagnostics.Stopwatch.GetTimestamp();
        return figures;
    }

    private static TimeSpan? OldestAge(RedisValue oldest, DateTimeOffset now)
    {
        if (oldest.IsNullOrEmpty)
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize((string)oldest!, AppJsonContext.Default.AuditEntry) is { } entry ? now - entry.At : null;
        }
        catch (JsonException)
        {
            return null; // a damaged entry: the drain reports it; its age is unknown
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RefreshInterval, TimeProvider.System);
        do
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogDebug(ex, "Operations figures not refreshed; the last ones stay");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
