using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Audit;

public sealed partial class AuditLog
{
    /// <summary>
    /// Inserts the rows in order inside the open transaction, each chained to its tenant's previous hash: one lookup of
    /// the chain's head per tenant and call, then one prepared INSERT per row (the hot path of every transition).
    /// On PostgreSQL, where any number of instances write, the head of each tenant's chain is read and extended under a
    /// transaction-scoped advisory lock on the tenant (taken in tenant order), so the chain never forks, gaps or repeats
    /// (SQLite has one writer per database anyway). A row whose EntryId is already in the table is skipped (it was
    /// written before: a replay, the drain) and the chain's head stays where it was; a row that breaks another
    /// constraint (a second claim of an approval's seq) is refused alone, so neither fails the unrelated rows beside it.
    /// The SQL is the same on both providers (quoted identifiers, <c>@</c> parameters, <c>ON CONFLICT DO NOTHING</c>).
    /// </summary>
    private async Task<InsertResult[]> InsertAsync(AppDbContext db, IReadOnlyList<AuditEntry> entries)
    {
        var connection = db.Database.GetDbConnection();
        var transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        if (db.Database.IsNpgsql())
        {
            foreach (var tenant in entries.Select(e => e.Tenant).Distinct().Order(StringComparer.Ordinal))
            {
                await using var chainLock = Command(connection, transaction, "SELECT pg_advisory_xact_lock(hashtextextended(@tenant, 5080))", "@tenant");
                chainLock.Parameters[0].Value = tenant;
                await chainLock.ExecuteNonQueryAsync();
            }
        }
        await using var head = Command(connection, transaction,
            "SELECT \"Hash\" FROM \"AuditEntries\" WHERE \"Tenant\" = @tenant ORDER BY \"Sequence\" DESC LIMIT 1", "@tenant");
        await using var existing = Command(connection, transaction,
            "SELECT \"Sequence\", \"PreviousHash\", \"Hash\", \"ChainVersion\" FROM \"AuditEntries\" WHERE \"EntryId\" = @entryId", "@entryId");
        string[] columns = ["EntryId", "At", "Tenant", "ApprovalId", "JobId", "Actor", "Action", "FromState", "ToState", "Reason",
            "PolicySnapshot", "JobHash", "Details", "ApprovalSeq", "PreviousHash", "Hash", "ChainVersion"];
        // No conflict target: a skipped row is then told apart (its EntryId is there, or another unique index refused it).
        await using var insert = Command(connection, transaction, $"""
            INSERT INTO "AuditEntries" ({string.Join(", ", columns.Select(c => $"\"{c}\""))})
            VALUES ({string.Join(", ", columns.Select(c => "@" + c))})
            ON CONFLICT DO NOTHING
            RETURNING "Sequence"
            """, [.. columns.Select(c => "@" + c)]);
        var heads = new Dictionary<string, string?>(StringComparer.Ordinal);
        var results = new InsertResult[entries.Count];
        for (var n = 0; n < entries.Count; n++)
        {
            var e = entries[n];
            if (!heads.TryGetValue(e.Tenant, out var previous))
            {
                head.Parameters[0].Value = e.Tenant;
                previous = await head.ExecuteScalarAsync() as string;
                heads[e.Tenant] = previous;
            }
            e.PreviousHash = previous;
            e.ChainVersion = KeyedChain;
            e.Hash = ComputeMac(e, await chainKey.ForTenantAsync(e.Tenant));
            object?[] values = [e.EntryId, e.At.UtcTicks, e.Tenant, e.ApprovalId, e.JobId, e.Actor, e.Action, e.FromState, e.ToState, e.Reason,
                e.PolicySnapshot, e.JobHash, e.Details, e.ApprovalSeq, e.PreviousHash, e.Hash, e.ChainVersion];
            for (var i = 0; i < values.Length; i++)
            {
                insert.Parameters[i].Value = values[i] ?? DBNull.Value;
            }
            if (await insert.ExecuteScalarAsync() is long written)
            {
                e.Sequence = written;
                heads[e.Tenant] = e.Hash;
                results[n] = new InsertResult(true, null);
                continue;
            }
            existing.Parameters[0].Value = e.EntryId;
            await using (var reader = await existing.ExecuteReaderAsync())
            {
                if (await reader.ReadAsync())
                {
                    // Already there: the caller's entry takes the stored row's place in the chain.
                    e.Sequence = reader.GetInt64(0);
                    e.PreviousHash = reader.IsDBNull(1) ? null : reader.GetString(1);
                    e.Hash = reader.GetString(2);
                    e.ChainVersion = reader.GetInt32(3);
                    results[n] = new InsertResult(false, null);
                    continue;
                }
            }
            results[n] = new InsertResult(false, new AuditConflictException(e));
        }
        return results;
    }

    private static System.Data.Common.DbCommand Command(System.Data.Common.DbConnection connection,
        System.Data.Common.DbTransaction? transaction, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    private abstract record Work;

    /// <summary>Outbox entries, in their own transaction: idempotent inserts, one commit; a failed commit throws.</summary>
    private async Task<InsertResult[]> WriteDrainAsync(IReadOnlyList<AuditEntry> entries)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        await using var tx = await db.Database.BeginTransactionAsync();
        var rows = await InsertAsync(db, entries);
        await tx.CommitAsync();
        Advanced(entries.Where((_, i) => rows[i].Inserted));
        return rows;
    }

    /// <summary>
    /// Tells the checkpoints where each tenant's chain stands after a commit (its newest committed row), and remembers
    /// it for <see cref="HeadAfter"/>.
    /// </summary>
    private void Advanced(IEnumerable<AuditEntry> committed)
    {
        foreach (var group in committed.Where(e => e.Sequence > 0).GroupBy(e => e.Tenant))
        {
            var head = group.MaxBy(e => e.Sequence)!;
            var advanced = new AuditHead(head.Sequence, head.Hash);
            _committedHeads.AddOrUpdate(group.Key, advanced, (_, known) => known.Sequence >= advanced.Sequence ? known : advanced);
            checkpoints.HeadAdvanced(group.Key, head.Sequence, head.Hash, group.Count());
        }
    }

    /// <summary>
    /// The tenant's chain head as this instance's writer committed it, once that commit held <paramref name="entry"/>:
    /// a head that includes the entry, known without reading the chain (the receipt of a decision names it). Null
    /// when the entry is not committed by this writer (its commit failed and it waits in the outbox): then read
    /// <see cref="HeadAsync"/>.
    /// </summary>
    public AuditHead? HeadAfter(AuditEntry entry) =>
        entry.Sequence > 0 && _committedHeads.TryGetValue(entry.Tenant, out var head) && head.Sequence >= entry.Sequence ? head : null;

    /// <summary>
    /// Writes the outbox entries older than <paramref name="minAge"/> (younger ones may belong to a transition whose
    /// commit is still under way) through the single writer, in a transaction of their own, and takes an entry off the
    /// outbox only once its row is committed or found already there. A pass whose commit fails throws and removes
    /// nothing. Returns how many rows it wrote.
}
