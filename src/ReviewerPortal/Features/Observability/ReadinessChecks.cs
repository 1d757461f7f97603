using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Observability;

/// <summary>Redis answers a PING within the budget.</summary>
public sealed class RedisReadiness(RedisConnection redis, IOptions<HealthOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var took = await redis.Database.PingAsync().WaitAsync(options.Value.Budget, cancellationToken);
            return HealthCheckResult.Healthy($"answered in {took.TotalMilliseconds:F0} ms");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("redis is not answering");
        }
    }
}

/// <summary>The database (SQLite or PostgreSQL) answers <c>SELECT 1</c> within the budget.</summary>
public sealed class DatabaseReadiness(IDbContextFactory<AppDbContext> dbFactory, IOptions<HealthOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            budget.CancelAfter(options.Value.Budget);
            await using var db = await dbFactory.CreateDbContextAsync(budget.Token);
            await db.Database.ExecuteSqlRawAsync("SELECT 1", budget.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("the database is not answering");
        }
    }
}

/// <summary>The timer service (deadlines, reminders, escalations) completed a pass within <c>Health:TimerPassWithin</c>.</summary>
public sealed class TimerReadiness(ExpiryService timers, TimeProvider time, IOptions<HealthOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var since = time.GetUtcNow() - (timers.LastPassAt ?? timers.CreatedAt);
        var bound = options.Value.TimerPassWithin;
        return Task.FromResult(since <= bound
            ? HealthCheckResult.Healthy(timers.LastPassAt is null ? "first pass under way" : $"last pass {since.TotalSeconds:F0} s ago")
            : HealthCheckResult.Unhealthy($"no completed timer pass for {since.TotalSeconds:F0} s (bound {bound.TotalSeconds:F0} s)"));
    }
}

/// <summary>No audit entry has waited in the outbox (for its database row) longer than <c>Health:AuditOutboxMaxAge</c>.</summary>
public sealed class AuditOutboxReadiness(OperationsSnapshot figures, IOptions<HealthOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<TenantOperations> tenants;
        try
        {
            tenants = await figures.GetAsync(TimeSpan.FromSeconds(5), cancellationToken).WaitAsync(options.Value.Budget, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy("the audit outbox cannot be read");
        }
        var bound = options.Value.AuditOutboxMaxAge;
        var late = tenants.Where(t => t.OutboxOldestAge > bound).ToList();
        return late.Count == 0
            ? HealthCheckResult.Healthy($"{tenants.Sum(t => t.OutboxDepth)} entries waiting")
            : HealthCheckResult.Unhealthy(string.Join("; ", late.Select(t =>
                $"{t.Tenant}: oldest entry {t.OutboxOldestAge!.Value.TotalSeconds:F0} s old (bound {bound.TotalSeconds:F0} s)")));
    }
}
