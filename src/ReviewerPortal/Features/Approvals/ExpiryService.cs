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

    /// <summary>Fires every due timer; returns when the next one is due.</summary>
    protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
    {
        var approvals = services.GetRequiredService<ApprovalService>();
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            while (true)
            {
                var due = await store.DueTimersAsync(tenant, Time.GetUtcNow(), 100);
                // Each timer under its own approval's lock, many at once: their audit rows share the writer's group commits.
                await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                    async (member, ct) => await FireAsync(approvals, tenant, member, ct));
                if (due.Count < 100)
                {
                    break;
                }
            }
            next = Earliest(next, await store.NextTimerAsync(tenant));
        }
        return next;
    }

    private async Task FireAsync(ApprovalService approvals, string tenant, string member, CancellationToken cancellationToken)
    {
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
                if (await approvals.ExpireAsync(tenant, id, cancellationToken))
                {
                    logger.LogInformation("Approval {ApprovalId} of {Tenant} expired", id, tenant);
                }
                break;
            case "step":
                await approvals.FireStepAsync(tenant, id, cancellationToken);
                break;
            case "resubmit":
                await approvals.FireResubmissionWindowAsync(tenant, id, cancellationToken);
                break;
            case "case":
                await services.GetRequiredService<Cases.CaseService>().FireAsync(tenant, id, cancellationToken);
                break;
            default:
                logger.LogWarning("Unknown timer {Member} of {Tenant} dropped", member, tenant);
                await store.RemoveTimerAsync(tenant, member);
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

    /// <summary>One pass over every tenant; a tenant whose pass fails does not hold up the others.</summary>
    public async Task DrainAllAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string> all;
        try
        {
            all = await tenants.ListAsync();
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
