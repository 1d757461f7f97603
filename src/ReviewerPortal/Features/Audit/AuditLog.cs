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
public sealed partial class AuditLog(
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
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, AuditHead> _committedHeads = new(StringComparer.Ordinal);

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
    /// batch's Redis steps concurrently (two claims of one approval's step cannot both be there: the table's unique
    /// (tenant, approval, seq) refuses the second row before its script runs, and its caller reads again), waits
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
        // Before the callers resume: a decision's receipt reads the head its commit wrote (HeadAfter).
        Advanced((written ?? items).Select(i => i.Entry));
        for (var i = 0; i < items.Count; i++)
        {
            Complete(items[i], outcomes[i]);
        }
        await Task.WhenAll((written ?? items).GroupBy(i => i.Entry.Tenant).Select(g => RemoveFromOutboxAsync(g.Key, [.. g.Select(i => i.Json)])));
    }

    /// <summary>The transitions happened in Redis and their entries wait in the outbox: the drain writes the rows later.</summary>
    private void Recovered(List<TransitionWork> items, StepOutcome[] outcomes, Exception ex)
    {
        logger.LogError(ex, "Audit commit of {Count} entries failed after their transitions; they stay in the outbox for the drain", items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            // The sequence the rolled-back insert gave it is not the entry's: the drain writes it later.
            items[i].Entry.Sequence = 0;
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

}
