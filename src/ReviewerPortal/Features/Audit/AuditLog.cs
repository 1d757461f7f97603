using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// Writes transitions and their audit rows together. A transition runs inside an open SQLite write transaction that
/// already holds its audit row: if the row cannot be written, the transition never starts; if the Redis step
/// refuses or fails, the row is rolled back. The Redis step also appends the same entry to the tenant's audit
/// outbox in the same atomic script, and <see cref="DrainOutboxAsync"/> inserts any entry whose SQLite commit was
/// lost (crash or failure between the two commits), so no transition is ever left without its row.
/// </summary>
public sealed class AuditLog(
    IDbContextFactory<AppDbContext> dbFactory,
    RedisConnection redis,
    TimeProvider time,
    ILogger<AuditLog> logger) : IDisposable
{
    private readonly Channel<WorkItem> _queue = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
    private Task? _writer;
    private readonly Lock _start = new();

    /// <summary>Work items waiting for the writer (for tests that line up a batch).</summary>
    internal int Queued => Volatile.Read(ref _queued);
    private int _queued;

    public AuditEntry NewEntry(string tenant, string actor, string action) => new()
    {
        EntryId = Guid.CreateVersion7(time.GetUtcNow()).ToString("N"),
        At = time.GetUtcNow(),
        Tenant = tenant,
        Actor = actor,
        Action = action,
    };

    public static string Serialize(AuditEntry entry) => JsonSerializer.Serialize(entry, AppJsonContext.Default.AuditEntry);

    /// <summary>
    /// Runs <paramref name="transition"/> with the entry's JSON (to be pushed to the outbox by the same Redis script).
    /// The transition answers whether it happened; only then is the audit row committed.
    /// </summary>
    public async Task<T> RecordAsync<T>(
        AuditEntry entry,
        Func<string, Task<(bool Happened, T Result)>> transition,
        CancellationToken cancellationToken)
    {
        var json = Serialize(entry);
        var item = new WorkItem(entry, json, async j =>
        {
            var (happened, result) = await transition(j);
            return (happened, (object?)result);
        });
        EnsureWriter();
        await _queue.Writer.WriteAsync(item, cancellationToken);
        Interlocked.Increment(ref _queued);
        // Once queued, the item runs whole: a transition is never abandoned half-way by a caller going away.
        return (T)(await item.Done.Task)!;
    }

    /// <summary>Writes one entry that has no Redis side (e.g. a refused attempt).</summary>
    public Task AppendAsync(AuditEntry entry, CancellationToken cancellationToken) =>
        RecordAsync(entry, _ => Task.FromResult((true, true)), cancellationToken);

    private void EnsureWriter()
    {
        if (_writer is not null)
        {
            return;
        }
        lock (_start)
        {
            _writer ??= Task.Run(WriteLoopAsync);
        }
    }

    /// <summary>
    /// The single audit writer (SQLite has one writer anyway). It takes what is queued, up to a batch, inserts every
    /// row in one open transaction (so a database that cannot take them fails the batch before anything happens),
    /// then runs the batch's Redis steps concurrently (they touch different approvals: each caller holds its
    /// approval's lock), and commits the rows of the steps that happened: one commit, one fsync, for the batch.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        const int maxBatch = 64;
        var batch = new List<WorkItem>(maxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (batch.Count < maxBatch && _queue.Reader.TryRead(out var next))
            {
                Interlocked.Decrement(ref _queued);
                batch.Add(next);
            }
            try
            {
                await WriteBatchAsync(batch);
            }
            catch (Exception ex)
            {
                // The database could not even be opened: fail what is still waiting; the loop lives on.
                foreach (var item in batch)
                {
                    item.Done.TrySetException(ex);
                }
            }
        }
    }

    private async Task WriteBatchAsync(List<WorkItem> batch)
    {
        (bool Happened, object? Result, Exception? Error)[] outcomes;
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            await using var tx = await db.Database.BeginTransactionAsync();
            try
            {
                await InsertAsync(db, batch.Select(i => i.Entry));
            }
            catch (Exception ex)
            {
                // The rows cannot be written: no transition of this batch may happen.
                foreach (var item in batch)
                {
                    item.Done.TrySetException(ex);
                }
                return;
            }

            outcomes = await Task.WhenAll(batch.Select(RunStepAsync));
            if (outcomes.All(o => o.Happened))
            {
                await CommitAsync(tx, batch, outcomes);
                return;
            }
            await tx.RollbackAsync();
        }

        // Some steps did not happen (a refused decision, a failed Redis call): write only the rows of those that did.
        var happened = batch.Where((_, i) => outcomes[i].Happened).ToList();
        for (var i = 0; i < batch.Count; i++)
        {
            if (!outcomes[i].Happened)
            {
                Complete(batch[i], outcomes[i]);
            }
        }
        if (happened.Count == 0)
        {
            return;
        }
        var kept = outcomes.Where(o => o.Happened).ToArray();
        try
        {
            await using var db = await dbFactory.CreateDbContextAsync();
            await using var tx = await db.Database.BeginTransactionAsync();
            await InsertAsync(db, happened.Select(i => i.Entry));
            await CommitAsync(tx, happened, kept);
        }
        catch (Exception ex) when (ex is SqliteException or DbUpdateException or InvalidOperationException)
        {
            Recovered(happened, kept, ex);
        }
    }

    private static async Task<(bool Happened, object? Result, Exception? Error)> RunStepAsync(WorkItem item)
    {
        try
        {
            var (happened, result) = await item.Transition(item.Json);
            return (happened, result, null);
        }
        catch (Exception ex)
        {
            return (false, null, ex);
        }
    }

    private async Task CommitAsync(Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction tx, List<WorkItem> items,
        (bool Happened, object? Result, Exception? Error)[] outcomes)
    {
        try
        {
            await tx.CommitAsync();
        }
        catch (Exception ex) when (ex is SqliteException or DbUpdateException or InvalidOperationException)
        {
            Recovered(items, outcomes, ex);
            return;
        }
        for (var i = 0; i < items.Count; i++)
        {
            Complete(items[i], outcomes[i]);
            await RemoveFromOutboxAsync(items[i].Entry.Tenant, items[i].Json);
        }
    }

    /// <summary>The transitions happened in Redis and their entries wait in the outbox: the drain writes the rows later.</summary>
    private void Recovered(List<WorkItem> items, (bool Happened, object? Result, Exception? Error)[] outcomes, Exception ex)
    {
        logger.LogError(ex, "Audit commit of {Count} entries failed after their transitions; the outbox will replay them", items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            Complete(items[i], outcomes[i]);
        }
    }

    private static void Complete(WorkItem item, (bool Happened, object? Result, Exception? Error) outcome)
    {
        if (outcome.Error is not null)
        {
            item.Done.TrySetException(outcome.Error);
        }
        else
        {
            item.Done.TrySetResult(outcome.Result);
        }
    }

    public void Dispose() => _queue.Writer.TryComplete();

    /// <summary>
    /// Inserts the rows in order inside the open transaction, each chained to its tenant's previous hash: one lookup of
    /// the chain's head per tenant and batch, then one prepared INSERT per row (the hot path of every transition).
    /// </summary>
    private static async Task InsertAsync(AppDbContext db, IEnumerable<AuditEntry> entries)
    {
        var connection = (SqliteConnection)db.Database.GetDbConnection();
        var transaction = (SqliteTransaction?)db.Database.CurrentTransaction?.GetDbTransaction();
        await using var head = connection.CreateCommand();
        head.Transaction = transaction;
        head.CommandText = "SELECT Hash FROM AuditEntries WHERE Tenant = $tenant ORDER BY Sequence DESC LIMIT 1";
        var headTenant = head.Parameters.Add("$tenant", SqliteType.Text);
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO AuditEntries (EntryId, At, Tenant, ApprovalId, JobId, Actor, Action, FromState, ToState, Reason,
                                      PolicySnapshot, JobHash, Details, PreviousHash, Hash)
            VALUES ($entryId, $at, $tenant, $approvalId, $jobId, $actor, $action, $fromState, $toState, $reason,
                    $policySnapshot, $jobHash, $details, $previousHash, $hash)
            RETURNING Sequence
            """;
        string[] names = ["$entryId", "$at", "$tenant", "$approvalId", "$jobId", "$actor", "$action", "$fromState", "$toState", "$reason",
            "$policySnapshot", "$jobHash", "$details", "$previousHash", "$hash"];
        foreach (var name in names)
        {
            insert.Parameters.Add(name, name == "$at" ? SqliteType.Integer : SqliteType.Text);
        }
        var heads = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            if (!heads.TryGetValue(e.Tenant, out var previous))
            {
                headTenant.Value = e.Tenant;
                previous = await head.ExecuteScalarAsync() as string;
            }
            e.PreviousHash = previous;
            e.Hash = ComputeHash(e);
            object?[] values = [e.EntryId, e.At.UtcTicks, e.Tenant, e.ApprovalId, e.JobId, e.Actor, e.Action, e.FromState, e.ToState, e.Reason,
                e.PolicySnapshot, e.JobHash, e.Details, e.PreviousHash, e.Hash];
            for (var i = 0; i < values.Length; i++)
            {
                insert.Parameters[i].Value = values[i] ?? DBNull.Value;
            }
            e.Sequence = (long)(await insert.ExecuteScalarAsync())!;
            heads[e.Tenant] = e.Hash;
        }
    }

    private sealed record WorkItem(AuditEntry Entry, string Json, Func<string, Task<(bool Happened, object? Result)>> Transition)
    {
        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Inserts outbox entries older than <paramref name="minAge"/> that have no row yet, and clears the outbox.
    /// Younger entries may belong to a transition whose commit is still under way.
    /// </summary>
    public async Task<int> DrainOutboxAsync(string tenant, TimeSpan minAge, CancellationToken cancellationToken)
    {
        var db = redis.Database;
        var key = RedisKeys.AuditOutbox(tenant);
        var items = await db.ListRangeAsync(key);
        var written = 0;
        var cutoff = time.GetUtcNow() - minAge;
        foreach (var item in items)
        {
            var json = (string)item!;
            var entry = JsonSerializer.Deserialize(json, AppJsonContext.Default.AuditEntry);
            if (entry is null || entry.At > cutoff)
            {
                continue;
            }
            await using (var ctx = await dbFactory.CreateDbContextAsync(cancellationToken))
            {
                if (!await ctx.AuditEntries.AnyAsync(e => e.EntryId == entry.EntryId, cancellationToken))
                {
                    await AppendAsync(entry, cancellationToken);
                    written++;
                    logger.LogWarning("Audit entry {EntryId} ({Action}) recovered from the outbox", entry.EntryId, entry.Action);
                }
            }
            await db.ListRemoveAsync(key, item);
        }
        return written;
    }

    private async Task RemoveFromOutboxAsync(string tenant, string json)
    {
        try
        {
            await redis.Database.ListRemoveAsync(RedisKeys.AuditOutbox(tenant), json);
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            // Harmless: the drain finds the row already written and clears the entry.
        }
    }

    /// <summary>Re-computes the tenant's hash chain; the first row that does not match is reported.</summary>
    public async Task<AuditVerification> VerifyAsync(string tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        string? previous = null;
        var count = 0;
        await foreach (var entry in db.AuditEntries.AsNoTracking()
                           .Where(e => e.Tenant == tenant)
                           .OrderBy(e => e.Sequence)
                           .AsAsyncEnumerable()
                           .WithCancellation(cancellationToken))
        {
            if (entry.PreviousHash != previous || entry.Hash != ComputeHash(entry))
            {
                return new AuditVerification(tenant, false, count, entry.Sequence);
            }
            previous = entry.Hash;
            count++;
        }
        return new AuditVerification(tenant, true, count, null);
    }

    internal static string ComputeHash(AuditEntry e)
    {
        var text = string.Join('\u001f',
            e.PreviousHash, e.EntryId, e.At.UtcTicks, e.Tenant, e.ApprovalId, e.JobId, e.Actor, e.Action,
            e.FromState, e.ToState, e.Reason, e.PolicySnapshot, e.JobHash, e.Details);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }
}

public sealed record AuditVerification(string Tenant, bool Intact, int VerifiedEntries, long? FirstBrokenSequence);
