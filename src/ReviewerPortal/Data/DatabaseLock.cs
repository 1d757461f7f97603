using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Data;

/// <summary>
/// Serialises what every instance does as it starts (migrations, seed data) among instances that share one PostgreSQL
/// database: a session-level advisory lock, held on a connection of its own until disposed, so instances starting
/// together migrate once and seed one set of accounts, keys and policies. On SQLite (one file on one host) there is
/// nothing to take.
/// </summary>
public sealed class DatabaseLock(IOptions<StorageOptions> storage, ILogger<DatabaseLock> logger)
{
    public async Task<IAsyncDisposable> AcquireAsync(string name, CancellationToken cancellationToken)
    {
        if (!storage.Value.IsPostgres)
        {
            return Nothing.Instance;
        }
        var key = Key(name);
        var connection = new NpgsqlConnection(storage.Value.Database);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", connection);
            take.Parameters.AddWithValue("key", key);
            await take.ExecuteNonQueryAsync(cancellationToken);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
        logger.LogDebug("Database lock {Name} taken", name);
        return new Held(connection, key);
    }

    /// <summary>A stable 64-bit key per name (advisory locks are per database, so other apps' databases are not involved).</summary>
    internal static long Key(string name) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes("reviewerportal:" + name)), 0);

    private sealed class Held(NpgsqlConnection connection, long key) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection);
                release.Parameters.AddWithValue("key", key);
                await release.ExecuteNonQueryAsync();
            }
            catch (NpgsqlException)
            {
                // The connection is gone, and with it the lock.
            }
            await connection.DisposeAsync();
        }
    }

    private sealed class Nothing : IAsyncDisposable
    {
        public static readonly Nothing Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
