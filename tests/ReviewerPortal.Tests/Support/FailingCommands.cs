using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// An EF Core interceptor that makes every database command fail (as a lost or broken database would) until
/// <see cref="Heal"/>. Register it with <c>services.AddSingleton&lt;IInterceptor&gt;(failing)</c> (see <see cref="FailingCommits"/>).
/// </summary>
public sealed class FailingCommands : DbCommandInterceptor
{
    private volatile bool _failing;

    public void FailAll() => _failing = true;

    public void Heal() => _failing = false;

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        FailIfAsked();
        return base.NonQueryExecutingAsync(command, eventData, result, cancellationToken);
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        FailIfAsked();
        return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
    }

    public override ValueTask<InterceptionResult<object>> ScalarExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<object> result, CancellationToken cancellationToken = default)
    {
        FailIfAsked();
        return base.ScalarExecutingAsync(command, eventData, result, cancellationToken);
    }

    private void FailIfAsked()
    {
        if (_failing)
        {
            throw new SqliteException("disk I/O error (injected by the test)", 10); // SQLITE_IOERR
        }
    }
}
