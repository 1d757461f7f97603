using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// An EF Core interceptor that makes SQLite commits fail (as a full disk or an I/O error would) until healed or for
/// the next <c>n</c> commits. Register it with <c>services.AddSingleton&lt;IInterceptor&gt;(failing)</c>: the app adds every
/// registered interceptor to its DbContext.
/// </summary>
public sealed class FailingCommits : DbTransactionInterceptor
{
    private int _remaining;
    private int _failed;
    private TaskCompletionSource? _gate;
    private TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How many commits were made to fail so far.</summary>
    public int Failed => Volatile.Read(ref _failed);

    /// <summary>Every commit fails until <see cref="Heal"/>.</summary>
    public void FailAll() => Volatile.Write(ref _remaining, int.MaxValue);

    /// <summary>The next <paramref name="n"/> commits fail, then they succeed again.</summary>
    public void FailNext(int n) => Volatile.Write(ref _remaining, n);

    public void Heal() => Volatile.Write(ref _remaining, 0);

    /// <summary>The next commits wait (before committing) until <see cref="Release"/>; the task completes once one waits.</summary>
    public Task Hold()
    {
        _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _held.Task;
    }

    public void Release() => Interlocked.Exchange(ref _gate, null)?.TrySetResult();

    public override InterceptionResult TransactionCommitting(DbTransaction transaction, TransactionEventData eventData, InterceptionResult result)
    {
        FailIfAsked();
        return result;
    }

    public override async ValueTask<InterceptionResult> TransactionCommittingAsync(DbTransaction transaction, TransactionEventData eventData,
        InterceptionResult result, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _gate) is { } gate)
        {
            _held.TrySetResult();
            await gate.Task;
        }
        FailIfAsked();
        return result;
    }

    private void FailIfAsked()
    {
        while (true)
        {
            var remaining = Volatile.Read(ref _remaining);
            if (remaining <= 0)
            {
                return;
            }
            var next = remaining == int.MaxValue ? remaining : remaining - 1;
            if (Interlocked.CompareExchange(ref _remaining, next, remaining) == remaining)
            {
                Interlocked.Increment(ref _failed);
                throw new SqliteException("database or disk is full (injected by the test)", 13); // SQLITE_FULL
            }
        }
    }
}
