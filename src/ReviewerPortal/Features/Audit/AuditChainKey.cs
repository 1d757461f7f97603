using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// The key of the audit chain's HMAC (chain version 1). One random 32-byte key per deployment, kept only as a Data
/// Protection–protected blob (purpose <see cref="Purpose"/>): in Redis, shared by every instance, and as
/// <c>chain-key.v1</c> in the checkpoint store (the checkpoint folder or object store), never in the database. Each tenant's chain uses its own key derived from it (HKDF-SHA256, the
/// tenant as info). So rewriting a row needs the database, the Data Protection key ring <em>and</em> the blob.
/// <para>
/// Why a stored random key rather than one derived through <see cref="IDataProtector"/>: Protect is randomised, so
/// it yields no stable key; a random key protected by the ring is the same on every instance, survives the ring's key
/// rotation (old ring keys keep unprotecting) and can be moved to a vault later without changing a row.
/// </para>
/// A key that is missing while keyed rows exist is never replaced silently: writing fails, naming the file to restore.
/// A new key goes to the store at once when the store answers, else the checkpoint writer's push puts it there later
/// (<see cref="EnsureStoredAsync"/>): an unreachable store never fails a decision while Redis holds the key.
/// </summary>
public sealed class AuditChainKey(
    RedisConnection redis,
    IDataProtectionProvider dataProtection,
    IDbContextFactory<AppDbContext> dbFactory,
    IAuditCheckpointStore store,
    ILogger<AuditChainKey> logger)
{
    public const string Purpose = "ReviewerPortal.AuditChain.v1";
    public const string FileName = "chain-key.v1";
    private readonly SemaphoreSlim _load = new(1, 1);
    private readonly ConcurrentDictionary<string, byte[]> _tenants = new(StringComparer.Ordinal);
    private byte[]? _root;
    private volatile bool _stored;

    public string KeyFile => store.Describe(FileName);

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
            if (blob is null)
            {
                string? fromStore;
                try
                {
                    fromStore = await store.ReadChainKeyAsync(cancellationToken);
                }
                catch (CheckpointStoreUnavailableException ex)
                {
                    if (await AnyKeyedRowAsync(cancellationToken))
                    {
                        throw new InvalidOperationException(
                            $"The audit chain key is not in Redis (key {RedisKeys.AuditChainKey}) and the checkpoint store holding " +
                            $"{file} did not answer ({ex.Message}): no keyed row is written until one of them has the key.", ex);
                    }
                    fromStore = null;
                }
                blob = fromStore;
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
                if (fromStore is null)
                {
                    // Into the store now if it answers (bounded); else the checkpoint writer's push retries it.
                    using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    bounded.CancelAfter(TimeSpan.FromSeconds(5));
                    try
                    {
                        await store.WriteChainKeyAsync(blob, bounded.Token);
                        _stored = true;
                    }
                    catch (Exception ex) when (ex is CheckpointStoreUnavailableException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
                    {
                        logger.LogError("The audit chain key is in Redis but not yet in {File} ({Error}); written there later", file, ex.Message);
                    }
                }
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

    /// <summary>
    /// Puts the key that Redis holds into the checkpoint store unless it is there (once per process once it is); logs an
    /// error when the store holds another key. Throws <see cref="CheckpointStoreUnavailableException"/> when the store
    /// does not answer.
    /// </summary>
    public async Task EnsureStoredAsync(CancellationToken cancellationToken)
    {
        if (_stored || (string?)await redis.Database.StringGetAsync(RedisKeys.AuditChainKey) is not { } blob)
        {
            return;
        }
        var inStore = await store.ReadChainKeyAsync(cancellationToken);
        if (inStore is null)
        {
            await store.WriteChainKeyAsync(blob, cancellationToken);
            logger.LogInformation("The audit chain key was written to {File}", KeyFile);
        }
        else if (inStore != blob)
        {
            logger.LogError("The audit chain key in Redis differs from {File}; the one in Redis is used", KeyFile);
        }
        _stored = true;
    }
}
