using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// Compares Redis with the audit history, at start and then hourly: an approval whose record in Redis holds a lower
/// <c>seq</c> than its highest audited transition, or the same seq in another state, went backwards (Redis lost
/// acknowledged writes: a restart without AOF, a failover to a replica that lagged). Each such approval gets one
/// <c>state_regressed</c> entry per audited seq, and an error in the log. A record that is gone (past its retention)
/// is not compared, and a record ahead of its audit (a transition whose row still waits in the outbox) is not a
/// regression. Bounded: only approvals with an audited transition within <see cref="StorageOptions.DecidedRetention"/>,
/// read in batches.
/// The same pass finds audited releases (approved approvals, allowed jobs) whose record still says <c>pending</c> or
/// <c>dispatched</c> but whose entry in the dispatch sets is gone, and has <see cref="ReleaseRepair"/> put it back:
/// otherwise that job would never be published. A pass also runs a few seconds after the connection to Redis comes
/// back, since a server that restarted is where such losses come from.
/// </summary>
public sealed class AuditReconciler(
    AuditLog audit,
    IDbContextFactory<AppDbContext> dbFactory,
    RedisConnection redis,
    TenantStore tenants,
    ReleaseRepair releases,
    IOptions<StorageOptions> storage,
    TimeProvider time,
    ILogger<AuditReconciler> logger) : BackgroundService
{
    public const string Action = "state_regressed";
    public const string Actor = "system:reconciler";
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    /// <summary>How long after Redis comes back the pass runs (the other paths reconnect meanwhile).</summary>
    public static readonly TimeSpan AfterReconnect = TimeSpan.FromSeconds(3);
    private const int BatchSize = 500;
    private readonly Infrastructure.Timers.WakeSignal _reconnected = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        redis.Multiplexer.ConnectionRestored += OnRestored;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await RunOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Audit reconciliation failed; the next pass retries");
                }
                await _reconnected.WaitAsync(Interval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            redis.Multiplexer.ConnectionRestored -= OnRestored;
        }
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            _ = Task.Delay(AfterReconnect, time).ContinueWith(_ => _reconnected.Wake(), TaskScheduler.Default);
        }
    }

    /// <summary>One pass over every tenant; returns how many regressions it newly found.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var found = 0;
        foreach (var tenant in await tenants.ListAsync())
        {
            found += await ReconcileAsync(tenant, cancellationToken);
            await RelinkJobsAsync(tenant, cancellationToken);
        }
        return found;
    }

    private sealed record Audited(string ApprovalId, long Seq, string? State);

    private async Task<int> ReconcileAsync(string tenant, CancellationToken cancellationToken)
    {
        var since = time.GetUtcNow() - storage.Value.DecidedRetention;
        var found = 0;
        var after = "";
        while (true)
        {
            var batch = await HighestAuditedAsync(tenant, since, after, cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }
            // One pipelined read of the batch's records.
            var records = await Task.WhenAll(batch.Select(a =>
                redis.Database.HashGetAsync(RedisKeys.Approval(tenant, a.ApprovalId), ["state", "seq"])));
            await RelinkAsync(tenant, [.. batch.Where((_, i) => (string?)records[i][0] == "approved")
                .Select(a => DispatchMember.ForApproval(a.ApprovalId))], cancellationToken);
            for (var i = 0; i < batch.Count; i++)
            {
                var (state, seqText) = ((string?)records[i][0], (string?)records[i][1]);
                if (state is null)
                {
                    continue; // gone: past its retention
                }
                var seq = long.TryParse(seqText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 0;
                var audited = batch[i];
                if (seq < audited.Seq || (seq == audited.Seq && state != audited.State))
                {
                    found += await FlagAsync(tenant, audited, state, seq, cancellationToken) ? 1 : 0;
                }
            }
            if (batch.Count < BatchSize)
            {
                break;
            }
            after = batch[^1].ApprovalId;
        }
        return found;
    }

    /// <summary>The allowed jobs audited within the retention window, in batches: each release is checked as an approval's is.</summary>
    private async Task RelinkJobsAsync(string tenant, CancellationToken cancellationToken)
    {
        var since = time.GetUtcNow() - storage.Value.DecidedRetention;
        var after = "";
        while (true)
        {
            await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
            var jobs = await db.AuditEntries.AsNoTracking()
                .Where(e => e.Tenant == tenant && e.Action == ApprovalService.JobAllowedAction && e.JobId != null && e.At >= since
                            && string.Compare(e.JobId, after) > 0)
                .OrderBy(e => e.JobId)
                .Take(BatchSize)
                .Select(e => e.JobId!)
                .ToListAsync(cancellationToken);
            await RelinkAsync(tenant, [.. jobs.Select(DispatchMember.ForJob)], cancellationToken);
            if (jobs.Count < BatchSize)
            {
                return;
            }
            after = jobs[^1];
        }
    }

    /// <summary>Puts back every release of <paramref name="members"/> whose dispatch entry Redis lost.</summary>
    private async Task RelinkAsync(string tenant, IReadOnlyList<string> members, CancellationToken cancellationToken)
    {
        if (members.Count == 0)
        {
            return;
        }
        foreach (var member in await releases.MissingAsync(tenant, members))
        {
            await releases.RelinkAsync(tenant, member, cancellationToken);
        }
    }

    /// <summary>Per approval (in id order, after <paramref name="after"/>), its highest audited seq and the state it wrote.</summary>
    private async Task<List<Audited>> HighestAuditedAsync(string tenant, DateTimeOffset since, string after, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var rows = await db.AuditEntries.AsNoTracking()
            .Where(e => e.Tenant == tenant && e.ApprovalId != null && e.ApprovalSeq != null && e.At >= since
                        && string.Compare(e.ApprovalId, after) > 0)
            .Where(e => e.ApprovalSeq == db.AuditEntries
                .Where(m => m.Tenant == tenant && m.ApprovalId == e.ApprovalId && m.ApprovalSeq != null)
                .Max(m => m.ApprovalSeq))
            .OrderBy(e => e.ApprovalId)
            .Take(BatchSize)
            .Select(e => new { e.ApprovalId, e.ApprovalSeq, e.ToState })
            .ToListAsync(cancellationToken);
        return [.. rows.Select(r => new Audited(r.ApprovalId!, r.ApprovalSeq!.Value, r.ToState))];
    }

    /// <summary>Writes the approval's <c>state_regressed</c> entry for this audited seq unless it is already there.</summary>
    private async Task<bool> FlagAsync(string tenant, Audited audited, string state, long seq, CancellationToken cancellationToken)
    {
        // One entry per (approval, audited seq), whichever instance or pass finds it: its id is derived from them.
        var entryId = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(
            string.Join('\u001f', Action, tenant, audited.ApprovalId, audited.Seq))))[..32];
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            if (await db.AuditEntries.AnyAsync(e => e.EntryId == entryId, cancellationToken))
            {
                return false;
            }
        }
        var reason = $"redis seq {seq} state {state}; audited seq {audited.Seq} state {audited.State}";
        logger.LogError("Approval {ApprovalId} of {Tenant} went backwards in Redis ({Reason}): acknowledged writes were lost",
            audited.ApprovalId, tenant, reason);
        var entry = audit.NewEntry(tenant, Actor, Action);
        entry.EntryId = entryId;
        entry.ApprovalId = audited.ApprovalId;
        entry.FromState = audited.State;
        entry.ToState = state;
        entry.Reason = reason;
        entry.Details = $"auditedSeq={audited.Seq}";
        await audit.AppendAsync(entry, cancellationToken);
        return true;
    }
}
