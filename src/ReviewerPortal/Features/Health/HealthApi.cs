using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Health;

/// <summary>
/// <see cref="Warnings"/>: settings of the configured Redis that can lose acknowledged writes (still healthy);
/// <see cref="Durability"/>: what audit commits wait for.
/// </summary>
public sealed record HealthReport(string Status, string Redis, string Sqlite, string RedisMode, string? Problem = null)
{
    public IReadOnlyList<string> Warnings { get; init; } = [];
    public DurabilityReport? Durability { get; init; }
}

/// <summary>What audit commits wait for ("off", "none", "waitaof", "wait 1", "waitaof+wait 1"), how many waits ran and came back short.</summary>
public sealed record DurabilityReport(string Mode, long Waits, long Shortfalls);

/// <summary>
/// <c>GET /healthz</c>: 200 when Redis and SQLite both answer, 503 naming the one that does not; Redis settings that
/// risk acknowledged writes are listed as warnings (still 200).
/// </summary>
public static class HealthApi
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", Check).WithName("Health").WithTags("Health").AllowAnonymous()
            .WithSummary("Liveness of Redis and SQLite.");
        return routes;
    }

    public static async Task<Results<Ok<HealthReport>, JsonHttpResult<HealthReport>>> Check(
        RedisConnection redis, RedisDurability durability, IDbContextFactory<AppDbContext> dbFactory, CancellationToken cancellationToken)
    {
        var redisOk = await Probe(async () => await redis.Database.PingAsync());
        var sqliteOk = await Probe(async () =>
        {
            await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
            await db.Database.ExecuteSqlRawAsync("SELECT 1", cancellationToken);
        });
        var report = new HealthReport(redisOk && sqliteOk ? "healthy" : "unhealthy",
            redisOk ? "up" : "down", sqliteOk ? "up" : "down", redis.Mode,
            (redisOk, sqliteOk) switch
            {
                (false, false) => "redis and sqlite are not answering",
                (false, _) => "redis is not answering",
                (_, false) => "sqlite is not answering",
                _ => null,
            })
        {
            Warnings = durability.Warnings,
            Durability = new DurabilityReport(durability.Mode, durability.Waits, durability.Shortfalls),
        };
        return redisOk && sqliteOk
            ? TypedResults.Ok(report)
            : TypedResults.Json(report, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    private static async Task<bool> Probe(Func<Task> probe)
    {
        try
        {
            await probe().WaitAsync(Budget);
            return true;
        }
        catch (Exception)
        {
            return false;
        }
    }
}
