using Microsoft.AspNetCore.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// A store that does not answer becomes a 503 naming it (the transition did not happen, nothing was lost);
/// the Redis connection, SQLite and PostgreSQL (Npgsql's pool opens fresh connections) reconnect on their own, so the
/// next call succeeds once they are back.
/// </summary>
public sealed class StorageExceptionHandler(IProblemDetailsService problems, ILogger<StorageExceptionHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        var store = Classify(exception);
        if (store is null)
        {
            return false;
        }
        logger.LogWarning(exception, "{Store} unavailable for {Path}", store, context.Request.Path);
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = "1";
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "Service unavailable.",
                Type = "urn:reviewerportal:problem:store_unavailable",
                Detail = $"The {store} store is not answering; nothing was changed. Retry shortly.",
                Extensions = { ["code"] = "store_unavailable", ["store"] = store },
            },
        });
    }

    internal static string? Classify(Exception exception) => exception switch
    {
        RedisConnectionException or RedisTimeoutException => "redis",
        RedisException e when e.Message.Contains("No connection", StringComparison.OrdinalIgnoreCase) => "redis",
        NpgsqlException => "postgres",
        DbUpdateException { InnerException: NpgsqlException } => "postgres",
        SqliteException or DbUpdateException => "sqlite",
        InvalidOperationException { InnerException: { } inner } => Classify(inner),
        AggregateException { InnerException: { } inner } => Classify(inner),
        _ => null,
    };
}
