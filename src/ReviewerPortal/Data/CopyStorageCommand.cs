using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Data;

/// <summary>
/// <c>copy-storage --to-postgres "&lt;connection string&gt;"</c>, run with the current (SQLite) configuration: migrates
/// the PostgreSQL database, copies accounts (users, roles, their claims, logins and tokens), API keys, the Data
/// Protection key ring and the whole audit history into it (every audit row field for field: entry id, time, hashes,
/// sequence), then re-checks each tenant's hash chain there. Rows already there are skipped (by primary key; key-ring
/// entries by name; audit rows by entry id), so an interrupted copy is finished by running it again, and a run after
/// a complete copy copies nothing.
/// </summary>
public static class CopyStorageCommand
{
    public const string Name = "copy-storage";
    private const string TargetOption = "--to-postgres";
    private const int AuditBatch = 1000;

    private const string Usage = """
        usage: ReviewerPortal copy-storage --to-postgres "<Npgsql connection string>" [--Storage:DataPath=<folder>] [...]
          Copies the configured SQLite database (accounts, API keys, Data Protection keys, the audit history) into the
          PostgreSQL database, which is migrated first. Run it with the configuration the app runs with on SQLite;
          running it again copies only what is missing.
        """;

    public static bool Matches(string[] args) => args.Length > 0 && args[0] == Name;

    /// <summary>Runs the command (args as given to the app, starting with <c>copy-storage</c>); answers the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var rest = args.Skip(1).ToList();
        var at = rest.IndexOf(TargetOption);
        if (at < 0 || at + 1 >= rest.Count || string.IsNullOrWhiteSpace(rest[at + 1]))
        {
            await error.WriteLineAsync(Usage);
            return 2;
        }
        var target = rest[at + 1];
        rest.RemoveRange(at, 2);
        try
        {
            _ = new NpgsqlConnectionStringBuilder(target);
        }
        catch (ArgumentException ex)
        {
            await error.WriteLineAsync($"{TargetOption}: not an Npgsql connection string ({ex.Message}).");
            return 2;
        }

        // The app's own configuration sources (appsettings, environment, command line), nothing started.
        var builder = WebApplication.CreateBuilder([.. rest]);
        var storage = builder.Configuration.GetSection(StorageOptions.Section).Get<StorageOptions>() ?? new StorageOptions();
        if (storage.IsPostgres)
        {
            await error.WriteLineAsync("copy-storage reads the SQLite database: run it with the SQLite configuration " +
                                       "(Storage:Provider=sqlite), then switch Storage:Provider to postgres.");
            return 2;
        }
        var source = DatabaseSetup.ConnectionString(storage, builder.Environment.ContentRootPath);
        var file = new SqliteConnectionStringBuilder(source).DataSource;
        if (!File.Exists(file))
        {
            await error.WriteLineAsync($"No SQLite database at {file} (Storage:DataPath / Storage:Database).");
            return 1;
        }

        try
        {
            return await CopyAsync(source, target, output, error, cancellationToken);
        }
        catch (Exception ex) when (ex is NpgsqlException or SqliteException or DbUpdateException or CopyConflictException)
        {
            await error.WriteLineAsync($"copy-storage failed: {ex.GetBaseException().Message}");
            return 1;
        }
    }

    private static async Task<int> CopyAsync(string sourceConnection, string targetConnection, TextWriter output, TextWriter error,
        CancellationToken cancellationToken)
    {
        await using var source = new SqliteAppDbContext(new DbContextOptionsBuilder<SqliteAppDbContext>().UseSqlite(sourceConnection).Options);
        await using var target = new PostgresAppDbContext(new DbContextOptionsBuilder<PostgresAppDbContext>().UseNpgsql(targetConnection).Options);
        var where = new NpgsqlConnectionStringBuilder(targetConnection);
        await output.WriteLineAsync($"copy-storage: {new SqliteConnectionStringBuilder(sourceConnection).DataSource} -> " +
                                    $"postgres {where.Host}:{where.Port}/{where.Database}");

        // The source as the app would open it (an older file gains the tables added since), then the target.
        var sourcePending = (await source.Database.GetPendingMigrationsAsync(cancellationToken)).Count();
        await source.Database.MigrateAsync(cancellationToken);
        var targetPending = (await target.Database.GetPendingMigrationsAsync(cancellationToken)).Count();
        await target.Database.MigrateAsync(cancellationToken);
        await output.WriteLineAsync($"migrations applied: source {sourcePending}, target {targetPending}");

        // Parents before children (foreign keys).
        await ReportAsync(output, "AspNetRoles", await CopyByKeyAsync(source.Roles, target, r => r.Id, cancellationToken));
        await ReportAsync(output, "AspNetUsers", await CopyByKeyAsync(source.Users, target, u => u.Id, cancellationToken, u =>
        {
            u.LockoutEnd = u.LockoutEnd?.ToUniversalTime(); // timestamptz takes UTC offsets only
        }));
        await ReportAsync(output, "AspNetRoleClaims", await CopyByKeyAsync(source.RoleClaims, target, c => c.Id, cancellationToken));
        await ReportAsync(output, "AspNetUserClaims", await CopyByKeyAsync(source.UserClaims, target, c => c.Id, cancellationToken));
        await ReportAsync(output, "AspNetUserLogins", await CopyByKeyAsync(source.UserLogins, target,
            l => (l.LoginProvider, l.ProviderKey), cancellationToken));
        await ReportAsync(output, "AspNetUserTokens", await CopyByKeyAsync(source.UserTokens, target,
            t => (t.UserId, t.LoginProvider, t.Name), cancellationToken));
        await ReportAsync(output, "AspNetUserRoles", await CopyByKeyAsync(source.UserRoles, target, r => (r.UserId, r.RoleId), cancellationToken));
        await ReportAsync(output, "ApiKeys", await CopyByKeyAsync(source.ApiKeys, target, k => k.Id, cancellationToken));
        await ReportAsync(output, "DataProtectionKeys", await CopyKeyRingAsync(source, target, cancellationToken));
        var (audit, tenants) = await CopyAuditAsync(source, target, cancellationToken);
        await ReportAsync(output, "AuditEntries", audit);

        // Explicit ids were inserted: identity columns continue after the largest.
        foreach (var (table, column) in new[] { ("AuditEntries", "Sequence"), ("ApiKeys", "Id"), ("AspNetUserClaims", "Id"), ("AspNetRoleClaims", "Id") })
        {
            // Names from the list above, never input.
            var sql = $"""SELECT setval(pg_get_serial_sequence('"{table}"', '{column}'), COALESCE(MAX("{column}"), 0) + 1, false) FROM "{table}";""";
            await target.Database.ExecuteSqlRawAsync(sql, cancellationToken);
        }

        var broken = 0;
        foreach (var (tenant, counts) in tenants.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            var (intact, verified) = await VerifyChainAsync(target, tenant, cancellationToken);
            var expected = counts.Copied + counts.Existing;
            if (intact && verified == expected)
            {
                await output.WriteLineAsync($"audit {tenant}: copied {counts.Copied}, already there {counts.Existing}, chain intact ({verified} entries)");
                continue;
            }
            broken++;
            var (sourceIntact, _) = await VerifyChainAsync(source, tenant, cancellationToken);
            await output.WriteLineAsync($"audit {tenant}: copied {counts.Copied}, already there {counts.Existing}, CHAIN BROKEN " +
                                        $"after {verified} of {expected} entries" + (sourceIntact ? "" : " (broken in the SQLite database too)"));
        }
        if (broken > 0)
        {
            await error.WriteLineAsync($"copy-storage: {broken} tenant chain(s) do not verify in PostgreSQL.");
            return 1;
        }
        await output.WriteLineAsync("copy-storage: done");
        return 0;
    }

    private static Task ReportAsync(TextWriter output, string table, (int Copied, int Existing) counts) =>
        output.WriteLineAsync($"{table}: copied {counts.Copied}, already there {counts.Existing}");

    /// <summary>Copies the rows whose key the target does not hold yet (these tables are small: read whole).</summary>
    private static async Task<(int Copied, int Existing)> CopyByKeyAsync<T, TKey>(
        IQueryable<T> sourceRows, AppDbContext target, Func<T, TKey> key, CancellationToken cancellationToken, Action<T>? adjust = null)
        where T : class
        where TKey : notnull
    {
        var rows = await sourceRows.AsNoTracking().ToListAsync(cancellationToken);
        var existing = (await target.Set<T>().AsNoTracking().ToListAsync(cancellationToken)).Select(key).ToHashSet();
        var missing = rows.Where(r => !existing.Contains(key(r))).ToList();
        foreach (var row in missing)
        {
            adjust?.Invoke(row);
        }
        target.AddRange(missing);
        await target.SaveChangesAsync(cancellationToken);
        target.ChangeTracker.Clear();
        return (missing.Count, rows.Count - missing.Count);
    }

    /// <summary>Key-ring entries are known by their name (<c>key-&lt;guid&gt;</c>): an instance may have added its own already.</summary>
    private static async Task<(int Copied, int Existing)> CopyKeyRingAsync(AppDbContext source, AppDbContext target, CancellationToken cancellationToken)
    {
        var rows = await source.DataProtectionKeys.AsNoTracking().OrderBy(k => k.Id).ToListAsync(cancellationToken);
        var existing = (await target.DataProtectionKeys.AsNoTracking().Select(k => k.FriendlyName).ToListAsync(cancellationToken)).ToHashSet();
        var missing = rows.Where(k => !existing.Contains(k.FriendlyName)).ToList();
        target.DataProtectionKeys.AddRange(missing.Select(k => new DataProtectionKey { FriendlyName = k.FriendlyName, Xml = k.Xml }));
        await target.SaveChangesAsync(cancellationToken);
        target.ChangeTracker.Clear();
        return (missing.Count, rows.Count - missing.Count);
    }

    /// <summary>
    /// The audit history in sequence order, a batch per transaction, each row exactly as it is (its sequence included,
    /// so the order per tenant and the hash chain are the source's). A row whose entry id is there already is skipped;
    /// a sequence taken by another entry means the target holds a history of its own: nothing is mixed into it.
    /// </summary>
    private static async Task<((int Copied, int Existing) Total, Dictionary<string, (int Copied, int Existing)> PerTenant)> CopyAuditAsync(
        AppDbContext source, AppDbContext target, CancellationToken cancellationToken)
    {
        var there = new Dictionary<long, string>();
        await foreach (var row in target.AuditEntries.AsNoTracking().Select(e => new { e.Sequence, e.EntryId }).AsAsyncEnumerable()
                           .WithCancellation(cancellationToken))
        {
            there[row.Sequence] = row.EntryId;
        }
        var thereIds = there.Values.ToHashSet(StringComparer.Ordinal);
        var tenants = new Dictionary<string, (int Copied, int Existing)>(StringComparer.Ordinal);
        var (copied, existing) = (0, 0);
        var after = long.MinValue;
        while (true)
        {
            var batch = await source.AuditEntries.AsNoTracking().Where(e => e.Sequence > after).OrderBy(e => e.Sequence)
                .Take(AuditBatch).ToListAsync(cancellationToken);
            if (batch.Count == 0)
            {
                break;
            }
            after = batch[^1].Sequence;
            var missing = new List<AuditEntry>();
            foreach (var entry in batch)
            {
                var counts = tenants.GetValueOrDefault(entry.Tenant);
                if (thereIds.Contains(entry.EntryId))
                {
                    tenants[entry.Tenant] = (counts.Copied, counts.Existing + 1);
                    existing++;
                    continue;
                }
                if (there.TryGetValue(entry.Sequence, out var other))
                {
                    throw new CopyConflictException(
                        $"audit sequence {entry.Sequence} is entry {other} in PostgreSQL but {entry.EntryId} in SQLite: " +
                        "the target holds an audit history of its own; copy into an empty database.");
                }
                missing.Add(entry);
                tenants[entry.Tenant] = (counts.Copied + 1, counts.Existing);
            }
            if (missing.Count > 0)
            {
                target.AuditEntries.AddRange(missing);
                await target.SaveChangesAsync(cancellationToken);
                target.ChangeTracker.Clear();
                copied += missing.Count;
            }
        }
        return ((copied, existing), tenants);
    }

    /// <summary>
    /// The tenant's chain as far as the database alone tells: each row links to the previous hash, a row of the old kind
    /// hashes to its own and never follows a keyed one. A keyed row's MAC needs the chain key, which is not in the
    /// database: <c>GET /api/v1/audit/verify</c> checks it (and the signed checkpoints) once the app runs on the target.
    /// </summary>
    private static async Task<(bool Intact, int Verified)> VerifyChainAsync(AppDbContext db, string tenant, CancellationToken cancellationToken)
    {
        string? previous = null;
        var keyed = false;
        var count = 0;
        await foreach (var entry in db.AuditEntries.AsNoTracking().Where(e => e.Tenant == tenant).OrderBy(e => e.Sequence)
                           .AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            var hashed = entry.ChainVersion switch
            {
                0 => !keyed && entry.Hash == AuditLog.ComputeHash(entry),
                AuditLog.KeyedChain => true,
                _ => false,
            };
            if (entry.PreviousHash != previous || !hashed)
            {
                return (false, count);
            }
            keyed |= entry.ChainVersion == AuditLog.KeyedChain;
            previous = entry.Hash;
            count++;
        }
        return (true, count);
    }

    private sealed class CopyConflictException(string message) : Exception(message);
}
