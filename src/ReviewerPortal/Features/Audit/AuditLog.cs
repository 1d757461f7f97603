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

/// <summary>
/// Writes transitions and their audit rows together. A transition runs inside an open database write transaction that
/// already holds its audit row: if the row cannot be written, the transition never starts; if the Redis step
/// refuses or fails, the row is rolled back. Every Redis step also appends the same entry to the tenant's audit
/// outbox (a transition in the same atomic script; an entry with no Redis side of its own in an LPUSH of its own),
/// and an entry leaves the outbox only once a commit that holds its row succeeded. So when the commit fails after
/// the step (a full disk, an I/O error), the entry waits in the outbox and <see cref="DrainOutboxAsync"/> writes it
/// later, through this same writer: no transition or refusal is ever left without its row.
/// </summary>
public sealed class AuditLog(
    IDbContextFactory<AppDbContext> dbFactory,
    RedisConnection redis,
    RedisDurability durability,
    AuditChainKey chainKey,
    AuditCheckpoints checkpoints,
    TimeProvider time,
    ILogger<AuditLog> logger) : IDisposable
{
    private const int MaxBatch = 64;
    private const int DrainChunk = 256;
    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(new UnboundedChannelOptions { SingleReader = true });
    private Task? _writer;
    private readonly Lock _start = new();
    private int _queued;

    /// <summary>Work items waiting for the writer (for tests that line up a batch).</summary>
    internal int Queued => Volatile.Read(ref _queued);

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
    /// Runs <paramref name="transition"/> with the entry's JSON, which the same Redis script must push to the tenant's
    /// audit outbox. The transition answers whether it happened; only then is the audit row committed.
    /// </summary>
    public async Task<T> RecordAsync<T>(
        AuditEntry entry,
        Func<string, Task<(bool Happened, T Result)>> transition,
        CancellationToken cancellationToken)
    {
        var json = Serialize(entry);
        var item = new TransitionWork(entry, json, async j =>
        {
            var (happened, result) = await transition(j);
            return (happened, (object?)result);
        });
        await EnqueueAsync(item, cancellationToken);
        // Once queued, the item runs whole: a transition is never abandoned half-way by a caller going away.
        return (T)(await item.Done.Task)!;
    }

    /// <summary>
    /// Writes one entry that has no Redis side of its own (a refused attempt, a denied job, a delivery): its Redis step
    /// is the push to the outbox, so an entry whose commit fails is still written later by the drain. A row that
    /// cannot even be inserted fails the caller before anything is pushed.
    /// </summary>
    public Task AppendAsync(AuditEntry entry, CancellationToken cancellationToken) =>
        RecordAsync(entry, async json =>
        {
            await redis.Database.ListLeftPushAsync(RedisKeys.AuditOutbox(entry.Tenant), json);
            return (true, true);
        }, cancellationToken);

    private async Task EnqueueAsync(Work work, CancellationToken cancellationToken)
    {
        EnsureWriter();
        Interlocked.Increment(ref _queued);
        try
        {
            await _queue.Writer.WriteAsync(work, cancellationToken);
        }
        catch
        {
            Interlocked.Decrement(ref _queued);
            throw;
        }
    }

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
    /// The single audit writer (SQLite has one writer anyway, and the per-tenant hash chain must have one: only this
    /// loop reads a chain's head). It takes what is queued, up to a batch of transitions, inserts every row in one
    /// open transaction (so a database that cannot take them fails the batch before anything happens), then runs the
    /// batch's Redis steps concurrently (they touch different approvals: each caller holds its approval's lock), waits
    /// for those writes to be durable where the server can tell (<see cref="RedisDurability"/>), and commits the rows
    /// of the steps that happened: one commit, one fsync, for the batch. A drain request runs on its
    /// own, in its own transaction, between batches.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        var batch = new List<TransitionWork>(MaxBatch);
        while (await _queue.Reader.WaitToReadAsync())
        {
            batch.Clear();
            DrainWork? drain = null;
            while (batch.Count < MaxBatch && drain is null && _queue.Reader.TryRead(out var next))
            {
                Interlocked.Decrement(ref _queued);
                if (next is TransitionWork transition)
                {
                    batch.Add(transition);
                }
                else
                {
                    drain = (DrainWork)next;
                }
            }
            if (batch.Count > 0)
            {
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
            if (drain is not null)
            {
                try
                {
                    drain.Done.TrySetResult(await WriteDrainAsync(drain.Entries));
                }
                catch (Exception ex)
                {
                    drain.Done.TrySetException(ex);
                }
            }
        }
    }

    private async Task WriteBatchAsync(List<TransitionWork> batch)
    {
        StepOutcome[] outcomes;
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            await using var tx = await db.Database.BeginTransactionAsync();
            InsertResult[] rows;
            try
            {
                rows = await InsertAsync(db, batch.Select(i => i.Entry).ToList());
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
            // A row the table refuses (a constraint other than its EntryId) fails its own transition only.
            for (var i = 0; i < batch.Count; i++)
            {
                if (rows[i].Refused is { } refused)
                {
                    batch[i].Done.TrySetException(refused);
                }
            }
            batch = batch.Where((_, i) => rows[i].Refused is null).ToList();

            outcomes = await Task.WhenAll(batch.Select(RunStepAsync));
            if (outcomes.Any(o => o.Happened))
            {
                // The rows commit only once the Redis writes they record are durable (where the server can tell).
                await durability.WaitAsync();
            }
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
            var rows = await InsertAsync(db, happened.Select(i => i.Entry).ToList());
            foreach (var refused in rows.Select(r => r.Refused).OfType<Exception>())
            {
                // Its transition happened and its entry waits in the outbox; the drain reports it again.
                logger.LogError(refused, "Audit row refused after its transition happened; it stays in the outbox");
            }
            await CommitAsync(tx, happened, kept, written: happened.Where((_, i) => rows[i].Refused is null).ToList());
        }
        catch (Exception ex)
        {
            Recovered(happened, kept, ex);
        }
    }

    private static async Task<StepOutcome> RunStepAsync(TransitionWork item)
    {
        try
        {
            var (happened, result) = await item.Transition(item.Json);
            return new StepOutcome(happened, result, null);
        }
        catch (Exception ex)
        {
            return new StepOutcome(false, null, ex);
        }
    }

    /// <summary>
    /// Commits the rows of steps that happened. Their transitions stand whatever the commit does: a failed commit
    /// leaves the entries in the outbox (every step pushed its entry there) for the drain, and the callers see their
    /// transitions as done. Only after a successful commit do the entries leave the outbox.
    /// </summary>
    private async Task CommitAsync(IDbContextTransaction tx, List<TransitionWork> items, StepOutcome[] outcomes,
        List<TransitionWork>? written = null)
    {
        try
        {
            await tx.CommitAsync();
        }
        catch (Exception ex)
        {
            Recovered(items, outcomes, ex);
            return;
        }
        for (var i = 0; i < items.Count; i++)
        {
            Complete(items[i], outcomes[i]);
        }
        Advanced((written ?? items).Select(i => i.Entry));
        await Task.WhenAll((written ?? items).Select(i => RemoveFromOutboxAsync(i.Entry.Tenant, i.Json)));
    }

    /// <summary>The transitions happened in Redis and their entries wait in the outbox: the drain writes the rows later.</summary>
    private void Recovered(List<TransitionWork> items, StepOutcome[] outcomes, Exception ex)
    {
        logger.LogError(ex, "Audit commit of {Count} entries failed after their transitions; they stay in the outbox for the drain", items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            Complete(items[i], outcomes[i]);
        }
    }

    private static void Complete(TransitionWork item, StepOutcome outcome)
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

    private sealed record TransitionWork(AuditEntry Entry, string Json, Func<string, Task<(bool Happened, object? Result)>> Transition) : Work
    {
        public TaskCompletionSource<object?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed record DrainWork(IReadOnlyList<AuditEntry> Entries) : Work
    {
        public TaskCompletionSource<InsertResult[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly record struct StepOutcome(bool Happened, object? Result, Exception? Error);

    /// <summary>Inserted: a new row. Neither inserted nor refused: the row was already there. Refused: the table will not take it.</summary>
    private readonly record struct InsertResult(bool Inserted, Exception? Refused);

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

    /// <summary>Tells the checkpoints where each tenant's chain stands after a commit (its newest committed row).</summary>
    private void Advanced(IEnumerable<AuditEntry> committed)
    {
        foreach (var group in committed.Where(e => e.Sequence > 0).GroupBy(e => e.Tenant))
        {
            var head = group.MaxBy(e => e.Sequence)!;
            checkpoints.HeadAdvanced(group.Key, head.Sequence, head.Hash, group.Count());
        }
    }

    /// <summary>
    /// Writes the outbox entries older than <paramref name="minAge"/> (younger ones may belong to a transition whose
    /// commit is still under way) through the single writer, in a transaction of their own, and takes an entry off the
    /// outbox only once its row is committed or found already there. A pass whose commit fails throws and removes
    /// nothing. Returns how many rows it wrote.
    /// </summary>
    public async Task<int> DrainOutboxAsync(string tenant, TimeSpan minAge, CancellationToken cancellationToken)
    {
        var db = redis.Database;
        var key = RedisKeys.AuditOutbox(tenant);
        var cutoff = time.GetUtcNow() - minAge;
        var due = new List<(StackExchange.Redis.RedisValue Raw, AuditEntry Entry)>();
        foreach (var item in await db.ListRangeAsync(key))
        {
            var entry = JsonSerializer.Deserialize((string)item!, AppJsonContext.Default.AuditEntry);
            if (entry is not null && entry.At <= cutoff)
            {
                due.Add((item, entry));
            }
        }
        var written = 0;
        // The list holds the newest first: write the oldest first, so the chain keeps their order.
        due.Reverse();
        foreach (var chunk in due.Chunk(DrainChunk))
        {
            var work = new DrainWork([.. chunk.Select(c => c.Entry)]);
            await EnqueueAsync(work, cancellationToken);
            var rows = await work.Done.Task;
            for (var i = 0; i < chunk.Length; i++)
            {
                var (raw, entry) = chunk[i];
                if (rows[i].Refused is { } refused)
                {
                    logger.LogError(refused, "Audit entry {EntryId} ({Action}) in the outbox is refused by the table; it stays there", entry.EntryId, entry.Action);
                    continue;
                }
                if (rows[i].Inserted)
                {
                    written++;
                    logger.LogWarning("Audit entry {EntryId} ({Action}) recovered from the outbox", entry.EntryId, entry.Action);
                }
                await db.ListRemoveAsync(key, raw);
            }
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

    /// <summary>The chain version of the rows written now: HMAC-SHA256 with the tenant's chain key.</summary>
    public const int KeyedChain = 1;

    /// <summary>
    /// Re-checks the tenant's chain and compares it with its signed checkpoints (kept outside the database). A row
    /// whose hash or link does not match, a row of the old (unkeyed) kind after a keyed one, or a row that is not the one
    /// a checkpoint signed is a rewrite (the first one is reported); a history that ends before the latest checkpoint,
    /// or differs from it at its sequence, is truncated.
    /// </summary>
    public async Task<AuditVerification> VerifyAsync(string tenant, CancellationToken cancellationToken)
    {
        var reading = await checkpoints.ReadAsync(tenant, cancellationToken);
        var signed = reading.Checkpoints;
        var bySequence = new Dictionary<long, AuditCheckpointClaims>();
        foreach (var checkpoint in signed)
        {
            bySequence.TryAdd(checkpoint.Sequence, checkpoint);
        }
        var latest = signed.Count == 0 ? null : signed[^1];
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        string? previous = null;
        byte[]? key = null;
        var keyed = false;
        var count = 0;
        long? rewritten = null;
        long? last = null;
        var truncated = false;
        var seen = 0;
        await foreach (var entry in db.AuditEntries.AsNoTracking()
                           .Where(e => e.Tenant == tenant)
                           .OrderBy(e => e.Sequence)
                           .AsAsyncEnumerable()
                           .WithCancellation(cancellationToken))
        {
            last = entry.Sequence;
            if (rewritten is null)
            {
                var linked = entry.PreviousHash == previous;
                var hashed = entry.ChainVersion switch
                {
                    0 => !keyed && entry.Hash == ComputeHash(entry),
                    KeyedChain => entry.Hash == ComputeMac(entry, key ??= await chainKey.ForTenantAsync(tenant, cancellationToken)),
                    _ => false,
                };
                keyed |= entry.ChainVersion == KeyedChain;
                if (linked && hashed)
                {
                    count++;
                }
                else
                {
                    rewritten = entry.Sequence;
                }
            }
            if (bySequence.TryGetValue(entry.Sequence, out var checkpoint))
            {
                seen++;
                if (!string.Equals(checkpoint.Hash, entry.Hash, StringComparison.Ordinal))
                {
                    // Not the row that was signed: the history was replaced from here (or before).
                    truncated = true;
                    rewritten ??= entry.Sequence;
                }
            }
            previous = entry.Hash;
        }
        // A signed sequence that is not there: cut off at the end, or a row taken out of the middle.
        if (seen < bySequence.Count)
        {
            truncated = true;
        }
        // A log that could not be read, or that was tampered with, proves nothing about the end of the history.
        return new AuditVerification(tenant, rewritten is null && !truncated && reading.Log == CheckpointReading.Ok, count, rewritten,
            rewritten, truncated, last,
            latest is null ? null : new AuditCheckpointSummary(latest.Sequence, latest.Hash, latest.At, latest.Kid), bySequence.Count,
            reading.Log, reading.Problem);
    }

    /// <summary>The newest row of the tenant's chain (null when it has none yet).</summary>
    public Task<AuditHead?> HeadAsync(string tenant, CancellationToken cancellationToken) => ReadHeadAsync(dbFactory, tenant, cancellationToken);

    internal static async Task<AuditHead?> ReadHeadAsync(IDbContextFactory<AppDbContext> dbFactory, string tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.AuditEntries.AsNoTracking().Where(e => e.Tenant == tenant).OrderByDescending(e => e.Sequence)
            .Select(e => new AuditHead(e.Sequence, e.Hash)).FirstOrDefaultAsync(cancellationToken);
    }

    /// <summary>The row's fields and the previous hash, as hashed (version 0) or MACed (version 1).</summary>
    private static string CanonicalText(AuditEntry e)
    {
        var text = string.Join('\u001f',
            e.PreviousHash, e.EntryId, e.At.UtcTicks, e.Tenant, e.ApprovalId, e.JobId, e.Actor, e.Action,
            e.FromState, e.ToState, e.Reason, e.PolicySnapshot, e.JobHash, e.Details);
        if (e.ApprovalSeq is { } seq)
        {
            text += "\u001fseq=" + seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return text;
    }

    /// <summary>Chain version 0: the row's SHA-256 over its fields and the previous hash; the approval seq joins only when
    /// set, so rows written before it existed keep their hashes.</summary>
    internal static string ComputeHash(AuditEntry e) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalText(e))));

    /// <summary>Chain version 1: HMAC-SHA256 of the same text with the tenant's chain key.</summary>
    internal static string ComputeMac(AuditEntry e, byte[] key) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(CanonicalText(e))));

    /// <summary>The row's hash the way its <see cref="AuditEntry.ChainVersion"/> says (for tools that hold the key).</summary>
    internal static string ComputeHash(AuditEntry e, byte[]? key) =>
        e.ChainVersion == KeyedChain && key is not null ? ComputeMac(e, key) : ComputeHash(e);
}

/// <summary>
/// The answer of <c>GET /api/v1/audit/verify</c>. <paramref name="Rewritten"/>: the first sequence that is not what was
/// written (null when none); <paramref name="Truncated"/>: the history ends before a signed checkpoint or differs from
/// it there; <paramref name="Checkpoint"/>: the latest checkpoint whose signature verified (null when none yet);
/// <paramref name="FirstBrokenSequence"/> is <paramref name="Rewritten"/> under its earlier name;
/// <paramref name="CheckpointLog"/>: the checkpoint log outside the database, <c>ok</c>, <c>unreachable</c> (the store did
/// not answer: truncation cannot be ruled out, so not intact) or <c>tampered</c> (see <see cref="AuditCheckpoints.ReadAsync"/>),
/// with <paramref name="CheckpointProblem"/> saying what was found.
/// </summary>
public sealed record AuditVerification(string Tenant, bool Intact, int VerifiedEntries, long? FirstBrokenSequence,
    long? Rewritten, bool Truncated, long? LastSequence, AuditCheckpointSummary? Checkpoint, int CheckpointsChecked,
    string CheckpointLog, string? CheckpointProblem);

public sealed record AuditCheckpointSummary(long Sequence, string Hash, DateTimeOffset At, string Kid);

/// <summary>Where a tenant's chain stands: its newest row.</summary>
public sealed record AuditHead(long Sequence, string Hash);

/// <summary>The audit table refused a row for a constraint other than its EntryId (e.g. a second entry for the same approval seq).</summary>
public sealed class AuditConflictException(AuditEntry entry)
    : InvalidOperationException($"Audit entry {entry.EntryId} ({entry.Action}) refused: the table already holds an entry for " +
                                $"seq {entry.ApprovalSeq} of approval {entry.ApprovalId} (a second transition from one state)")
{
    public AuditEntry Entry { get; } = entry;
}
