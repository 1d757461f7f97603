namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// Drives deadlines. Every tenant keeps its timers in a Redis sorted set scored by due time; this service sleeps
/// until the earliest one (no fixed polling interval), wakes early when a change announces an earlier deadline,
/// and fires what is due through <see cref="ApprovalService"/>, whose lock and atomic transition make every timer
/// fire once even with several app instances. A timer that fell due while the app was down fires at start.
/// </summary>
public sealed class ExpiryService(
    IServiceProvider services,
    Tenants.TenantStore tenants,
    IApprovalStore store,
    ChangeFeed feed,
    TimeProvider time,
    ILogger<ExpiryService> logger) : BackgroundService
{
    /// <summary>Upper bound on a sleep, so a change announcement lost in transit delays a timer by at most this.</summary>
    private static readonly TimeSpan MaxSleep = TimeSpan.FromMinutes(1);

    private readonly SemaphoreSlim _wake = new(0, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var subscription = feed.Subscribe(change =>
        {
            if (change.ExpiresAt is { } due && due - time.GetUtcNow() < MaxSleep)
            {
                Wake();
            }
        });
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan sleep;
            try
            {
                sleep = await RunDueAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Timer pass failed; retrying shortly");
                sleep = TimeSpan.FromSeconds(1);
            }
            await SleepAsync(sleep, stoppingToken);
        }
    }

    /// <summary>Wakes the loop now (a new, possibly earlier, deadline exists).</summary>
    public void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
            }
        }
    }

    /// <summary>Fires every due timer; returns how long to sleep until the next one.</summary>
    public async Task<TimeSpan> RunDueAsync(CancellationToken cancellationToken)
    {
        var approvals = services.GetRequiredService<ApprovalService>();
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            while (true)
            {
                var due = await store.DueTimersAsync(tenant, time.GetUtcNow(), 100);
                if (due.Count == 0)
                {
                    break;
                }
                foreach (var member in due)
                {
                    await FireAsync(approvals, tenant, member, cancellationToken);
                }
                if (due.Count < 100)
                {
                    break;
                }
            }
            var upcoming = await store.NextTimerAsync(tenant);
            if (upcoming is { } at && (next is null || at < next))
            {
                next = at;
            }
        }
        if (next is null)
        {
            return MaxSleep;
        }
        var wait = next.Value - time.GetUtcNow();
        // A timer still due here is held by another instance's lock: look again shortly.
        return wait <= TimeSpan.Zero ? TimeSpan.FromMilliseconds(50) : wait < MaxSleep ? wait : MaxSleep;
    }

    private async Task FireAsync(ApprovalService approvals, string tenant, string member, CancellationToken cancellationToken)
    {
        var bar = member.IndexOf('|');
        var kind = bar < 0 ? member : member[..bar];
        var id = bar < 0 ? "" : member[(bar + 1)..];
        switch (kind)
        {
            case "expire":
                if (await approvals.ExpireAsync(tenant, id, cancellationToken))
                {
                    logger.LogInformation("Approval {ApprovalId} of {Tenant} expired", id, tenant);
                }
                break;
            default:
                logger.LogWarning("Unknown timer {Member} of {Tenant} dropped", member, tenant);
                await store.RemoveTimerAsync(tenant, member);
                break;
        }
    }

    private async Task SleepAsync(TimeSpan sleep, CancellationToken cancellationToken)
    {
        if (sleep <= TimeSpan.Zero)
        {
            return;
        }
        using var timeout = new CancellationTokenSource(sleep, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        try
        {
            await _wake.WaitAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // The timer ran out: time to look again.
        }
    }
}

/// <summary>Writes audit entries whose SQLite commit was lost (see <see cref="Audit.AuditLog"/>), at start and then periodically.</summary>
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
            try
            {
                foreach (var tenant in await tenants.ListAsync())
                {
                    await audit.DrainOutboxAsync(tenant, options.Value.AuditOutboxGrace, stoppingToken);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Audit outbox drain failed; will retry");
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
