using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// The key of the audit chain's HMAC (chain version 1). One random 32-byte key per deployment, kept only as a Data
/// Protection–protected blob (purpose <see cref="Purpose"/>): in Redis, shared by every instance, and in a file in the
/// checkpoint folder, never in the database. Each tenant's chain uses its own key derived from it (HKDF-SHA256, the
/// tenant as info). So rewriting a row needs the database, the Data Protection key ring <em>and</em> the blob.
/// <para>
/// Why a stored random key rather than one derived through <see cref="IDataProtector"/>: Protect is randomised, so
/// it yields no stable key; a random key protected by the ring is the same on every instance, survives the ring's key
/// rotation (old ring keys keep unprotecting) and can be moved to a vault later without changing a row.
/// </para>
/// A key that is missing while keyed rows exist is never replaced silently: writing fails, naming the file to restore.
/// </summary>
public sealed class AuditChainKey(
    RedisConnection redis,
    IDataProtectionProvider dataProtection,
    IDbContextFactory<AppDbContext> dbFactory,
    IOptions<AuditOptions> options,
    IOptions<StorageOptions> storage,
    IHostEnvironment environment,
    ILogger<AuditChainKey> logger)
{
    public const string Purpose = "ReviewerPortal.AuditChain.v1";
    public const string FileName = "chain-key.v1";
    private readonly SemaphoreSlim _load = new(1, 1);
    private readonly ConcurrentDictionary<string, byte[]> _tenants = new(StringComparer.Ordinal);
    private byte[]? _root;

    public string KeyFile => Path.Combine(options.Value.ResolveCheckpointPath(storage.Value, environment.ContentRootPath), FileName);

    /// <summary>The tenant's chain MAC key.</summary>
    public async ValueTask<byte[]> ForTenantAsync(string tenant, CancellationToken cancellationToken = default)
    {
        if (_tenants.TryGetValue(tenant, out var key))
        {
            return key;
        }
        var root = _root ?? await LoadAsync(cancellationToken);
        return _tenants.GetOrAdd(tenant, t => HKDF.DeriveKey(HashAlgorithmName.SHA256, root, 32, info: Encoding.UTF8.GetBytes("audit-chain:" + t)));
    }

    private async Task<byte[]> LoadAsync(CancellationToken cancellationToken)
    {
        await _load.WaitAsync(cancellationToken);
        try
        {
            if (_root is not null)
            {
                return _root;
            }
            var protector = dataProtection.CreateProtector(Purpose);
            var db = redis.Database;
            var file = KeyFile;
            var blob = (string?)await db.StringGetAsync(RedisKeys.AuditChainKey);
            var fromFile = File.Exists(file) ? (await File.ReadAllTextAsync(file, cancellationToken)).Trim() : null;
            if (blob is null)
            {
                blob = fromFile;
                if (blob is null)
                {
                    if (await AnyKeyedRowAsync(cancellationToken))
                    {
                        throw new InvalidOperationException(
                            $"The audit chain key is missing (Redis key {RedisKeys.AuditChainKey}, file {file}) while the history holds keyed " +
                            "rows: restore the file from a backup; a new key would make every keyed row unverifiable.");
                    }
                    blob = Convert.ToBase64String(protector.Protect(RandomNumberGenerator.GetBytes(32)));
                }
                // Instances starting together: one key wins, every one uses it.
                await db.StringSetAsync(RedisKeys.AuditChainKey, blob, when: StackExchange.Redis.When.NotExists);
                blob = (string)(await db.StringGetAsync(RedisKeys.AuditChainKey))!;
            }
            if (fromFile is null)
            {
                await WriteFileAsync(file, blob, cancellationToken);
            }
            else if (fromFile != blob)
            {
                logger.LogError("The audit chain key in Redis differs from {File}; the one in Redis is used", file);
            }
            _root = protector.Unprotect(Convert.FromBase64String(blob));
            return _root;
        }
        finally
        {
            _load.Release();
        }
    }

    private async Task<bool> AnyKeyedRowAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.AuditEntries.AnyAsync(e => e.ChainVersion > 0, cancellationToken);
    }

    private static async Task WriteFileAsync(string file, string blob, CancellationToken cancellationToken)
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
        File.Move(temp, file, overwrite: true);
    }
}
