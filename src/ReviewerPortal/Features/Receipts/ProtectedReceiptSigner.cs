using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.DataProtection;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Receipts;

/// <summary>
/// The default <see cref="IReceiptSigner"/>: per-tenant ECDSA P-256 keys in a Redis hash (the newest signs; retired ones
/// stay published so old receipts still verify). A private key is stored only encrypted with Data Protection (the
/// shared key ring, purpose <see cref="Purpose"/>, bound to the key id, which names the tenant); each instance decrypts a
/// tenant's current key once and keeps it in memory while it stays current (the ring that decrypts it is in memory
/// too); a retired key keeps only its public half.
/// </summary>
/// <remarks>
/// Keys stored in plain PKCS#8 by older versions are encrypted the first time they are read (and at start, by
/// <see cref="Infrastructure.Secrets.SecretsAtRestMigration"/>); a retired one loses its private half then.
/// </remarks>
public sealed class ProtectedReceiptSigner(RedisConnection redis, IDataProtectionProvider dataProtection, TimeProvider time,
    ILogger<ProtectedReceiptSigner> logger) : IReceiptSigner
{
    public const string Purpose = "ReviewerPortal.ReceiptKeys.v1";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>HSET only while the field still holds what was read (a rotation or another instance may have changed it).</summary>
    private const string ReplaceIfUnchanged = """
        if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
          return 1
        end
        return 0
        """;

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);

    /// <summary>
    /// Each tenant's current key, decrypted, with its key id: a key id always names the same private key (sealing changes
    /// only how it is stored, and a retired key is no longer current), so the id read at each signature decides (a
    /// rotation on any instance is seen at the next signature).
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SigningKey> _current = new();

    private IDatabase Db => redis.Database;

    public async Task<ApprovalReceipt> SignAsync(string tenant, Func<string, string> payloadFor, CancellationToken cancellationToken = default)
    {
        var key = await CurrentKeyAsync(tenant);
        var payload = payloadFor(key.Kid);
        return new ApprovalReceipt(payload, Base64Url.EncodeToString(key.Sign(Encoding.UTF8.GetBytes(payload))), key.Kid);
    }

    public async Task<IReadOnlyList<PublicSigningKey>> PublicKeysAsync(string tenant, CancellationToken cancellationToken = default)
    {
        await CurrentKeyAsync(tenant); // a tenant always has one
        return [.. (await SealPlainKeysAsync(tenant))
            .OrderByDescending(k => k.CreatedAt)
            .Select(k => new PublicSigningKey(k.Kid, k.PublicKey, k.CreatedAt, k.RetiredAt))];
    }

    public async Task<string> RotateAsync(string tenant, CancellationToken cancellationToken = default)
    {
        var previous = (string?)await Db.StringGetAsync(RedisKeys.SigningKeyCurrent(tenant));
        var kid = await CreateAsync(tenant, force: true);
        if (previous is not null)
        {
            // Retired: it signs nothing any more, so only its public half is kept.
            await UpdateAsync(tenant, previous, k => k with { PrivateKey = null, ProtectedKey = null, RetiredAt = k.RetiredAt ?? time.GetUtcNow() });
        }
        return kid;
    }

    /// <summary>
    /// Encrypts the keys an older version stored in plain PKCS#8 (a retired one loses its private half instead);
    /// answers every key of the tenant as stored afterwards.
    /// </summary>
    public async Task<IReadOnlyList<StoredKey>> SealPlainKeysAsync(string tenant)
    {
        var keys = new List<StoredKey>();
        foreach (var entry in await Db.HashGetAllAsync(RedisKeys.SigningKeys(tenant)))
        {
            var stored = JsonSerializer.Deserialize<StoredKey>((string)entry.Value!, Json)!;
            if (stored.PrivateKey is not null)
            {
                stored = await UpdateAsync(tenant, stored.Kid, Sealed) ?? stored;
            }
            keys.Add(stored);
        }
        return keys;
    }

    private StoredKey Sealed(StoredKey key)
    {
        if (key.PrivateKey is null)
        {
            return key;
        }
        if (key.RetiredAt is not null)
        {
            return key with { PrivateKey = null };
        }
        var pkcs8 = Convert.FromBase64String(key.PrivateKey);
        try
        {
            return key with { PrivateKey = null, ProtectedKey = Protect(key.Kid, pkcs8) };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    /// <summary>Rewrites one key's record unless another writer changed it meanwhile (then tries again on the new one); null when it is gone.</summary>
    private async Task<StoredKey?> UpdateAsync(string tenant, string kid, Func<StoredKey, StoredKey> change)
    {
        for (var attempt = 0; attempt < 10; attempt++)
        {
            if ((string?)await Db.HashGetAsync(RedisKeys.SigningKeys(tenant), kid) is not { } json)
            {
                return null;
            }
            var current = JsonSerializer.Deserialize<StoredKey>(json, Json)!;
            var updated = change(current);
            if (updated == current)
            {
                return current;
            }
            if ((int)await Db.ScriptEvaluateAsync(ReplaceIfUnchanged, [RedisKeys.SigningKeys(tenant)],
                    [kid, json, JsonSerializer.Serialize(updated, Json)]) == 1)
            {
                if (current.PrivateKey is not null)
                {
                    logger.LogInformation("Receipt key {Kid} of {Tenant}, stored in plain text by an older version, is now {State}",
                        kid, tenant, updated.ProtectedKey is null ? "public only (retired)" : "encrypted");
                }
                return updated;
            }
        }
        throw new InvalidOperationException($"Receipt key {kid} of {tenant} kept changing while it was being updated.");
    }

    private async Task<SigningKey> CurrentKeyAsync(string tenant)
    {
        var kid = (string?)await Db.StringGetAsync(RedisKeys.SigningKeyCurrent(tenant)) ?? await CreateAsync(tenant, force: false);
        if (_current.TryGetValue(tenant, out var cached) && cached.Kid == kid)
        {
            return cached;
        }
        var stored = JsonSerializer.Deserialize<StoredKey>((string)(await Db.HashGetAsync(RedisKeys.SigningKeys(tenant), kid))!, Json)!;
        if (stored.PrivateKey is not null)
        {
            stored = await UpdateAsync(tenant, kid, Sealed) ?? stored;
        }
        var pkcs8 = stored switch
        {
            { ProtectedKey: { } blob } => Unprotect(tenant, kid, blob),
            { PrivateKey: { } plain } => Convert.FromBase64String(plain),
            _ => throw new InvalidOperationException($"The current receipt key {kid} of {tenant} has no private half: rotate the tenant's key."),
        };
        try
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(pkcs8, out _);
            // The key it replaces is left to the finalizer: a signature on another thread may still be using it.
            return _current[tenant] = new SigningKey(kid, ecdsa);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    /// <summary>A decrypted current key; one signature at a time (an ECDsa instance is not safe for concurrent use).</summary>
    private sealed class SigningKey(string kid, ECDsa ecdsa)
    {
        public string Kid => kid;

        public byte[] Sign(byte[] data)
        {
            lock (ecdsa)
            {
                return ecdsa.SignData(data, HashAlgorithmName.SHA256);
            }
        }
    }

    private async Task<string> CreateAsync(string tenant, bool force)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var kid = $"{tenant}-{time.GetUtcNow():yyyyMMddHHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        var pkcs8 = key.ExportPkcs8PrivateKey();
        StoredKey stored;
        try
        {
            stored = new StoredKey(kid, null, Protect(kid, pkcs8), Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), time.GetUtcNow(), null);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
        await Db.HashSetAsync(RedisKeys.SigningKeys(tenant), kid, JsonSerializer.Serialize(stored, Json));
        if (force)
        {
            await Db.StringSetAsync(RedisKeys.SigningKeyCurrent(tenant), kid);
            return kid;
        }
        // Two instances creating the first key at once: one wins, both sign with the winner.
        await Db.StringSetAsync(RedisKeys.SigningKeyCurrent(tenant), kid, when: When.NotExists);
        return (string)(await Db.StringGetAsync(RedisKeys.SigningKeyCurrent(tenant)))!;
    }

    private IDataProtector ProtectorFor(string kid) => _protector.CreateProtector(kid);

    private string Protect(string kid, byte[] pkcs8) => Base64Url.EncodeToString(ProtectorFor(kid).Protect(pkcs8));

    private byte[] Unprotect(string tenant, string kid, string blob)
    {
        try
        {
            return ProtectorFor(kid).Unprotect(Base64Url.DecodeFromChars(blob));
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException(
                $"Receipt key {kid} of {tenant} cannot be decrypted: the Data Protection key ring that encrypted it is not available " +
                "(every instance must share the ring). Rotate the tenant's key to sign again.", ex);
        }
    }

    /// <summary>A key as stored: <see cref="ProtectedKey"/> (Data Protection ciphertext of the PKCS#8, base64url) while it is
    /// current, neither private form once retired; <see cref="PrivateKey"/> (plain PKCS#8, base64) only as older versions wrote it.</summary>
    public sealed record StoredKey(string Kid, string? PrivateKey, string? ProtectedKey, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);
}
