using Microsoft.AspNetCore.Http.HttpResults;
using System.Text.Json.Serialization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Health;

/// <summary>
/// The health of the two stores: <c>redis</c>, and the database under its provider's name (<c>sqlite</c> or
/// <c>postgres</c>; only the one in use appears). <see cref="Warnings"/>: settings of the configured Redis that can lose
/// acknowledged writes (still healthy); <see cref="Durability"/>: what audit commits wait for.
/// </summary>
public sealed record HealthReport(
    string Status,
    string Redis,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Sqlite,
    string RedisMode,
    string? Problem = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Postgres = null)
{
    public IReadOnlyList<string> Warnings { get; init; } = [];
    public DurabilityReport? Durability { get; init; }
}

/// <summary>What audit commits wait for ("off", "none", "waitaof", "commitaof", "wait 1", "waitaof+wait 1"), how many waits ran and came back short.</summary>
public sealed record DurabilityReport(string Mode, long Waits, long Shortfalls);

/// <summary>
/// <c>GET /healthz</c>: 200 when Redis and the database both answer, 503 naming the one that does not; Redis settings
/// that risk acknowledged writes are listed as warnings (still 200).
/// </summary>
public static class HealthApi
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(2);

    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", Check).WithName("Health").WithTags("Health").AllowAnonymous()
            .WithSummary("Liveness of Redis and the database (SQLite or PostgreSQL).");
        return routes;
    }

    public static async Task<Results<Ok<HealthReport>, JsonHttpResult<HealthReport>>> Check(
        RedisConnection redis, RedisDurability durability, IDbContextFactory<AppDbContext> dbFactory, IOptions<StorageOptions> storage,
        AuditCheckpoints checkpoints, IAuditCheckpointStore checkpointStore, CancellationToken cancellationToken)
    {
        var redisOk = await Probe(async () => await redis.Database.PingAsync());
        var databaseOk = await Probe(async () =>
        {
            await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
            await db.Database.ExecuteSqlRawAsync("SELECT 1", cancellationToken);
        });
        var store = storage.Value.StoreName;
        var databaseState = databaseOk ? "up" : "down";
        var report = new HealthReport(redisOk && databaseOk ? "healthy" : "unhealthy",
            redisOk ? "up" : "down",
            storage.Value.IsPostgres ? null : databaseState,
            redis.Mode,
            (redisOk, databaseOk) switch
            {
                (false, false) => $"redis and {store} are not answering",
                (false, _) => "redis is not answering",
                (_, false) => $"{store} is not answering",
                _ => null,
            },
            storage.Value.IsPostgres ? databaseState : null)
        {
            Warnings = CheckpointWarning(checkpoints, checkpointStore) is { } waiting ? [.. durability.Warnings, waiting] : durability.Warnings,
            Durability = new DurabilityReport(durability.Mode, durability.Waits, durability.Shortfalls),
        };
        return redisOk && databaseOk
            ? TypedResults.Ok(report)
            : TypedResults.Json(report, statusCode: StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>Checkpoints that wait in Redis for the checkpoint store (still healthy: decisions go on; they are pushed later).</summary>
    private static string? CheckpointWarning(AuditCheckpoints checkpoints, IAuditCheckpointStore store) =>
        checkpoints.PushState is { Waiting: > 0 } state
            ? $"audit checkpoint store {store.Describe("")}: {state.Waiting} checkpoint(s) wait in Redis to be written" +
              (state.LastError is { } error ? $" (last error: {error})" : "")
            : null;

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
