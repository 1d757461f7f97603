using ReviewerPortal.Infrastructure.Timers;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// The durable timer service: approval deadlines, reminders, escalations, timeouts, resubmission windows and case
/// deadlines. Every tenant keeps its timers in a Redis sorted set scored by due time; this service sleeps
/// until the earliest one (no fixed polling interval), wakes early when a change announces an earlier deadline,
/// and fires what is due through <see cref="ApprovalService"/>, whose lock and atomic transition make every timer
/// fire once even with several app instances. A timer that fell due while the app was down fires at start.
/// </summary>
public sealed class ExpiryService(
    IServiceProvider services,
    Tenants.TenantStore tenants,
    IApprovalStore store,
    ChangeFeed feed,
    ExpirySignal signal,
    TimeProvider time,
    Observability.PortalMetrics metrics,
    ILogger<ExpiryService> logger) : DueWorkService(signal, time, logger)
{
    private IDisposable? _subscription;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // A new deadline sooner than the next wake-up wakes the loop now.
        _subscription = feed.Subscribe(change =>
        {
            if (change.ExpiresAt is { } due && due - Time.GetUtcNow() < MaxSleep)
            {
                signal.Wake();
            }
        });
        return base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _subscription?.Dispose();
        base.Dispose();
    }

    /// <summary>How often each failing timer has failed in a row (this instance's view; it only paces the retries).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Tenant, string Member), int> _failures = new();

    /// <summary>
    /// Fires every due timer; returns when the next one is due. One tenant's failure (or one timer's) is contained: the
    /// pass goes on with every other timer and tenant.
    /// </summary>
    protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
    {
        var approvals = services.GetRequiredService<ApprovalService>();
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            try
            {
                while (true)
                {
                    var due = await store.DueTimerEntriesAsync(tenant, Time.GetUtcNow(), 100);
                    // Each timer under its own approval's lock, many at once: their audit rows share the writer's group commits.
                    await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                        async (timer, ct) => await FireContainedAsync(approvals, tenant, timer, ct));
                    if (due.Count < 100)
                    {
                        break;
                    }
                }
                next = Earliest(next, await store.NextTimerAsync(tenant));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Timers of tenant {Tenant} could not be read; the other tenants go on", tenant);
                next = Earliest(next, Time.GetUtcNow() + TimeSpan.FromSeconds(5));
            }
        }
        return next;
    }

    /// <summary>
    /// Fires one timer. A timer that throws (a damaged record, a bug) is audited as <c>timer_failed</c> and moved to a
    /// later due time with exponential back-off, only if nobody rescheduled it meanwhile; it never stops another timer.
    /// </summary>
    private async Task FireContainedAsync(ApprovalService approvals, string tenant, DueTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            var bar = timer.Member.IndexOf('|');
            metrics.TimerFired(tenant, bar < 0 ? "other" : timer.Member[..bar] is "expire" or "step" or "resubmit" or "case" ? timer.Member[..bar] : "other",
                Time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(timer.DueMs));
            await FireAsync(approvals, tenant, timer, cancellationToken);
            _failures.TryRemove((tenant, timer.Member), out _);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var attempt = _failures.AddOrUpdate((tenant, timer.Member), 1, (_, n) => n + 1);
            var retryAt = Time.GetUtcNow() + Backoff.Exponential(attempt, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(15));
            logger.LogError(ex, "Timer {Member} of {Tenant} failed (attempt {Attempt}); retrying at {RetryAt:O}", timer.Member, tenant, attempt, retryAt);
            try
            {
                if (!await store.MoveTimerAsync(tenant, timer.Member, timer.DueMs, retryAt))
                {
                    return; // another pass (or instance) handled this timer meanwhile, and recorded it
                }
                var audit = services.GetRequiredService<Audit.AuditLog>();
                var entry = audit.NewEntry(tenant, "system:timer", "timer_failed");
                var bar = timer.Member.IndexOf('|');
                var id = bar < 0 ? null : timer.Member[(bar + 1)..];
                if (ApprovalIds.LooksValid(id))
                {
                    entry.ApprovalId = id;
                }
                entry.Reason = $"{timer.Member} (due {DateTimeOffset.FromUnixTimeMilliseconds(timer.DueMs):O}) failed, attempt {attempt}: " +
                               $"{ex.GetType().Name}: {ex.Message}; retried at {retryAt:O}";
                await audit.AppendAsync(entry, cancellationToken);
            }
            catch (Exception inner) when (inner is not OperationCanceledException)
            {
                // Redis or the audit store is away as well: the timer stays due and the next pass tries again.
                logger.LogError(inner, "Timer failure of {Member} of {Tenant} could not be recorded", timer.Member, tenant);
            }
        }
    }

    private async Task FireAsync(ApprovalService approvals, string tenant, DueTimer timer, CancellationToken cancellationToken)
    {
        var member = timer.Member;
        var bar = member.IndexOf('|');
        var kind = bar < 0 ? member : member[..bar];
        var id = bar < 0 ? "" : member[(bar + 1)..];
        switch (kind)
        {
            case "expire":
                // Catching up after downtime: steps that fell due before the deadline (a timeout, say) come first.
                for (var i = 0; i < 100 && await approvals.FireStepAsync(tenant, id, cancellationToken); i++)
                {
                }
                if (await approvals.ExpireAsync(tenant, id, cancellationToken, timer.DueMs))
                {
                    logger.LogInformation("Approval {ApprovalId} of {Tenant} expired", id, tenant);
                }
                break;
            case "step":
                await approvals.FireStepAsync(tenant, id, cancellationToken, timer.DueMs);
                break;
            case "resubmit":
                await approvals.FireResubmissionWindowAsync(tenant, id, cancellationToken, timer.DueMs);
                break;
            case "case":
                await services.GetRequiredService<Cases.CaseService>().FireAsync(tenant, id, cancellationToken);
                break;
            default:
                logger.LogWarning("Unknown timer {Member} of {Tenant} dropped", member, tenant);
                await store.MoveTimerAsync(tenant, member, timer.DueMs, null);
                break;
        }
    }
}

/// <summary>Wakes the timer service when a deadline sooner than its next wake-up exists.</summary>
public sealed class ExpirySignal : WakeSignal;

/// <summary>
/// Writes audit entries whose SQLite commit was lost or failed (see <see cref="Audit.AuditLog"/>), at start and then
/// periodically. An entry leaves the outbox only once its row is committed, so a pass that fails (the database is
/// still away) removes nothing and the next pass tries again.
/// </summary>
public sealed class AuditOutboxDrain(
    Audit.AuditLog audit,
    Tenants.TenantStore tenants,
    Microsoft.Extensions.Options.IOptions<ApprovalOptions> options,
    TimeProvider time,
    ILogger<AuditOutboxDrain> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.AuditOutboxGrace, time);
        do
        {
            await DrainAllAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass over every tenant (and the accounts' stream); a tenant whose pass fails does not hold up the others.</summary>
    public async Task DrainAllAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string> all;
        try
        {
            all = [.. await tenants.ListAsync(), Auth.AccountAudit.Stream];
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            logger.LogWarning(ex, "Audit outbox drain could not list the tenants; will retry");
            return;
        }
        foreach (var tenant in all)
        {
            try
            {
                await audit.DrainOutboxAsync(tenant, options.Value.AuditOutboxGrace, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Audit outbox drain of {Tenant} failed; its entries stay in the outbox and the next pass retries", tenant);
            }
        }
    }
}

/// <summary>
/// Keeps the global approval index (approval or case id → tenant, the one key outside the tenants' slots) as small as
/// the live records: hourly, it drops the entries whose record left its retention.
/// </summary>
public sealed class ApprovalIndexPruner(IApprovalStore store, TimeProvider time, ILogger<ApprovalIndexPruner> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var removed = await store.PruneIndexAsync(time.GetUtcNow() - Interval, stoppingToken);
                logger.LogInformation("Approval index pruned: {Removed} entries of records past their retention", removed);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Pruning the approval index failed; the next hour tries again");
            }
        }
    }
}
