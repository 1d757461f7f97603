using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// Where the checkpoint log and the audit chain's protected key live outside the database: a folder (the default) or an
/// object store (<see cref="BlobCheckpointStore"/>). Reads and writes that cannot reach it throw
/// <see cref="CheckpointStoreUnavailableException"/>.
/// </summary>
public interface IAuditCheckpointStore
{
    /// <summary>Where an item lives, for messages: a file path or an <c>azblob://</c> address.</summary>
    string Describe(string name);

    /// <summary>Appends one signed checkpoint line to the tenant's log; answers the log's creation time when this call created it.</summary>
    Task<DateTimeOffset?> AppendAsync(string tenant, string line, CancellationToken cancellationToken);

    /// <summary>The tenant's log as it is now (empty when there is none).</summary>
    Task<CheckpointLog> ReadAsync(string tenant, CancellationToken cancellationToken);

    /// <summary>The chain key's protected blob, or null when none is stored.</summary>
    Task<string?> ReadChainKeyAsync(CancellationToken cancellationToken);

    /// <summary>Stores the chain key's protected blob unless one is stored already (it is never replaced).</summary>
    Task WriteChainKeyAsync(string blob, CancellationToken cancellationToken);
}

/// <summary>
/// A tenant's checkpoint log: its lines, and (for an object store) when the log was created, so a log deleted and
/// written again (or overwritten) is told from the one the app appended to.
/// </summary>
public sealed record CheckpointLog(IReadOnlyList<string> Lines, DateTimeOffset? CreatedOn);

/// <summary>The checkpoint store did not answer (or refused): nothing is known of what it holds.</summary>
public sealed class CheckpointStoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One JSON-lines file per tenant and <c>chain-key.v1</c> in <c>Audit:CheckpointPath</c> (a folder).</summary>
public sealed class FileCheckpointStore(IOptions<AuditOptions> options, IOptions<StorageOptions> storage, IHostEnvironment environment)
    : IAuditCheckpointStore
{
    public string Folder => options.Value.ResolveCheckpointPath(storage.Value, environment.ContentRootPath);

    public string Describe(string name) => Path.Combine(Folder, name);

    public async Task<DateTimeOffset?> AppendAsync(string tenant, string line, CancellationToken cancellationToken)
    {
        var file = LogFile(tenant);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            await File.AppendAllTextAsync(file, line + "\n", cancellationToken);
            return null; // a file's creation time is not tracked: the folder is for one host
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointStoreUnavailableException($"{file}: {ex.Message}", ex);
        }
    }

    public async Task<CheckpointLog> ReadAsync(string tenant, CancellationToken cancellationToken)
    {
        var file = LogFile(tenant);
        try
        {
            return File.Exists(file)
                ? new CheckpointLog([.. (await File.ReadAllLinesAsync(file, cancellationToken)).Where(l => !string.IsNullOrWhiteSpace(l))], null)
                : new CheckpointLog([], null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointStoreUnavailableException($"{file}: {ex.Message}", ex);
        }
    }

    public async Task<string?> ReadChainKeyAsync(CancellationToken cancellationToken)
    {
        var file = Describe(AuditChainKey.FileName);
        try
        {
            return File.Exists(file) ? (await File.ReadAllTextAsync(file, cancellationToken)).Trim() : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointStoreUnavailableException($"{file}: {ex.Message}", ex);
        }
    }

    public async Task WriteChainKeyAsync(string blob, CancellationToken cancellationToken)
    {
        var file = Describe(AuditChainKey.FileName);
        if (File.Exists(file))
        {
            return;
        }
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var temp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
            var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // readable by the app's user only
            }
            await using (var stream = new FileStream(temp, fileOptions))
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes(blob), cancellationToken);
            }
            File.Move(temp, file, overwrite: false);
        }
        catch (IOException) when (File.Exists(file))
        {
            // Another instance wrote it meanwhile: the first one stays.
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointStoreUnavailableException($"{file}: {ex.Message}", ex);
        }
    }

    private string LogFile(string tenant) => Path.Combine(Folder, Uri.EscapeDataString(tenant) + ".jsonl");
}

/// <summary>
/// The checkpoint log in Azure Blob Storage (<c>azblob://container/prefix</c>): one <b>append blob</b> per tenant,
/// <c>{prefix}{tenant}.jsonl</c>, and the chain key as the block blob <c>{prefix}chain-key.v1</c>, written only if absent.
/// <para>
/// Why append blobs: the service offers no call that changes a block once appended, so with the credentials the app
/// uses a checkpoint can only be added to; changing one means deleting or overwriting the whole blob, which gives it a new
/// creation time — the app records the creation time of each log it created (in Redis) and verification reports a log
/// created at another time, or missing checkpoints the app wrote, as tampered. Under a container immutability policy
/// (time-based retention with "allow protected append writes", or a legal hold) the service refuses deleting and
/// overwriting outright, which a block blob per checkpoint cannot combine with further appends to one log.
/// </para>
/// </summary>
public sealed class BlobCheckpointStore : IAuditCheckpointStore
{
    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly string _address;
    private volatile bool _containerReady;

    public BlobCheckpointStore(IOptions<AuditOptions> options)
    {
        var (container, prefix) = options.Value.BlobLocation();
        var clientOptions = new BlobClientOptions();
        // Failures are retried by the checkpoint writer (the checkpoint waits in Redis): fail fast here.
        clientOptions.Retry.MaxRetries = 1;
        clientOptions.Retry.Delay = TimeSpan.FromMilliseconds(200);
        clientOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(10);
        _container = new BlobServiceClient(options.Value.CheckpointStore.ConnectionString, clientOptions).GetBlobContainerClient(container);
        _prefix = prefix;
        _address = AuditOptions.BlobScheme + container + "/" + prefix;
    }

    public string Describe(string name) => _address + name;

    public Task<DateTimeOffset?> AppendAsync(string tenant, string line, CancellationToken cancellationToken) =>
        Guard(async () =>
        {
            await EnsureContainerAsync(cancellationToken);
            var blob = _container.GetAppendBlobClient(LogName(tenant));
            var created = await blob.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            using var content = new MemoryStream(Encoding.UTF8.GetBytes(line + "\n"));
            await blob.AppendBlockAsync(content, cancellationToken: cancellationToken);
            return created is null ? (DateTimeOffset?)null : (await blob.GetPropertiesAsync(cancellationToken: cancellationToken)).Value.CreatedOn;
        }, LogName(tenant));

    public Task<CheckpointLog> ReadAsync(string tenant, CancellationToken cancellationToken) =>
        Guard(async () =>
        {
            var blob = _container.GetAppendBlobClient(LogName(tenant));
            try
            {
                var download = (await blob.DownloadContentAsync(cancellationToken)).Value;
                var lines = download.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                return new CheckpointLog(lines, download.Details.CreatedOn);
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return new CheckpointLog([], null);
            }
        }, LogName(tenant));

    public Task<string?> ReadChainKeyAsync(CancellationToken cancellationToken) =>
        Guard(async () =>
        {
            try
            {
                return (await _container.GetBlobClient(_prefix + AuditChainKey.FileName).DownloadContentAsync(cancellationToken))
                    .Value.Content.ToString().Trim();
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return (string?)null;
            }
        }, _prefix + AuditChainKey.FileName);

    public async Task WriteChainKeyAsync(string blob, CancellationToken cancellationToken)
    {
        await Guard(async () =>
        {
            await EnsureContainerAsync(cancellationToken);
            try
            {
                await _container.GetBlobClient(_prefix + AuditChainKey.FileName).UploadAsync(BinaryData.FromString(blob),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
            }
            catch (RequestFailedException ex) when (ex.Status is 409 or 412)
            {
                // One is stored already: it stays.
            }
            return 0;
        }, _prefix + AuditChainKey.FileName);
    }

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        if (!_containerReady)
        {
            await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
            _containerReady = true;
        }
    }

    private string LogName(string tenant) => _prefix + Uri.EscapeDataString(tenant) + ".jsonl";

    /// <summary>Any failure to reach or use the store (refused connection, timeout, 403, 5xx) as unavailable.</summary>
    private async Task<T> Guard<T>(Func<Task<T>> action, string name)
    {
        try
        {
            return await action();
        }
        catch (Exception ex) when (ex is RequestFailedException or AggregateException or HttpRequestException or IOException
                                       || (ex is TaskCanceledException && ex.InnerException is TimeoutException))
        {
            throw new CheckpointStoreUnavailableException($"{_address}{name[_prefix.Length..]}: {Reason(ex)}", ex);
        }
    }

    /// <summary>The last attempt's reason (the SDK's retry wrapper repeats every attempt's), on one line.</summary>
    private static string Reason(Exception ex) =>
        (ex is AggregateException { InnerExceptions.Count: > 0 } all ? all.InnerExceptions[^1].Message : ex.Message).Split('\n')[0].Trim();
}
