using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Receipts;

/// <summary>A signed statement that an approval was decided, for this exact job, by these people.</summary>
/// <param name="Payload">The signed JSON text (verify these exact bytes, then read them).</param>
/// <param name="Signature">ECDSA P-256 / SHA-256 over the UTF-8 payload, IEEE P1363 format, base64url.</param>
/// <param name="Kid">The tenant key that signed it.</param>
public sealed record ApprovalReceipt(string Payload, string Signature, string Kid);

/// <param name="AuditSequence">The tenant's audit head when the receipt was issued: its sequence…</param>
/// <param name="AuditHash">…and its chain hash (compare with the signed audit checkpoints).</param>
public sealed record ReceiptClaims(string ApprovalId, string Tenant, string JobId, string JobHash, string PolicySnapshot,
    string Decision, IReadOnlyList<string> Deciders, DateTimeOffset DecidedAt, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, string Kid,
    long? AuditSequence = null, string? AuditHash = null);

public sealed record PublicSigningKey(string Kid, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);

public sealed record PublicKeysResponse(string Tenant, string Algorithm, IReadOnlyList<PublicSigningKey> Keys);

/// <summary>
/// Per-tenant ECDSA P-256 signing keys in Redis (the newest signs; retired ones stay published so old receipts
/// still verify) and the receipts they sign. An executor verifies a receipt offline with the public keys only.
/// </summary>
public sealed class ReceiptSigner(RedisConnection redis, TimeProvider time)
{
    public static readonly TimeSpan Validity = TimeSpan.FromHours(24);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private IDatabase Db => redis.Database;

    /// <summary>A receipt for a decided approval; null while it is pending.</summary>
    public async Task<ApprovalReceipt?> IssueAsync(Approval approval, Audit.AuditHead? auditHead = null)
    {
        if (approval.State == ApprovalStates.Pending || approval.DecidedAt is null)
        {
            return null;
        }
        var (kid, key) = await CurrentKeyAsync(approval.Tenant);
        using (key)
        {
            var now = time.GetUtcNow();
            var claims = new ReceiptClaims(approval.Id, approval.Tenant, approval.JobId, approval.JobHash, approval.PolicySnapshot,
                approval.State, approval.DecidedBy is null ? [] : [approval.DecidedBy], approval.DecidedAt.Value, now, now + Validity, kid,
                auditHead?.Sequence, auditHead?.Hash);
            var payload = JsonSerializer.Serialize(claims, Json);
            var signature = key.SignData(Encoding.UTF8.GetBytes(payload), HashAlgorithmName.SHA256);
            return new ApprovalReceipt(payload, Base64Url(signature), kid);
        }
    }

    /// <summary>Signs another statement of the tenant (an audit checkpoint) with its current receipt key, as receipts are.</summary>
    /// <param name="payloadFor">The payload text, given the signing key's id.</param>
    public async Task<ApprovalReceipt> SignAsync(string tenant, Func<string, string> payloadFor)
    {
        var (kid, key) = await CurrentKeyAsync(tenant);
        using (key)
        {
            var payload = payloadFor(kid);
            var signature = key.SignData(Encoding.UTF8.GetBytes(payload), HashAlgorithmName.SHA256);
            return new ApprovalReceipt(payload, Base64Url(signature), kid);
        }
    }

    public async Task<IReadOnlyList<PublicSigningKey>> PublicKeysAsync(string tenant)
    {
        await CurrentKeyAsync(tenant); // a tenant always has one
        var entries = await Db.HashGetAllAsync(RedisKeys.SigningKeys(tenant));
        return [.. entries.Select(e => JsonSerializer.Deserialize<StoredKey>((string)e.Value!, Json)!)
            .OrderByDescending(k => k.CreatedAt)
            .Select(k => new PublicSigningKey(k.Kid, k.PublicKey, k.CreatedAt, k.RetiredAt))];
    }

    /// <summary>Makes a new key current; the previous one is retired but stays published for verification.</summary>
    public async Task<string> RotateAsync(string tenant)
    {
        var previous = (string?)await Db.StringGetAsync(RedisKeys.SigningKeyCurrent(tenant));
        var kid = await CreateAsync(tenant, force: true);
        if (previous is not null && (string?)await Db.HashGetAsync(RedisKeys.SigningKeys(tenant), previous) is { } json)
        {
            var stored = JsonSerializer.Deserialize<StoredKey>(json, Json)! with { RetiredAt = time.GetUtcNow() };
            await Db.HashSetAsync(RedisKeys.SigningKeys(tenant), previous, JsonSerializer.Serialize(stored, Json));
        }
        return kid;
    }

    private async Task<(string Kid, ECDsa Key)> CurrentKeyAsync(string tenant)
    {
        var kid = (string?)await Db.StringGetAsync(RedisKeys.SigningKeyCurrent(tenant)) ?? await CreateAsync(tenant, force: false);
        var stored = JsonSerializer.Deserialize<StoredKey>((string)(await Db.HashGetAsync(RedisKeys.SigningKeys(tenant), kid))!, Json)!;
        var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(Convert.FromBase64String(stored.PrivateKey), out _);
        return (kid, key);
    }

    private async Task<string> CreateAsync(string tenant, bool force)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var kid = $"{tenant}-{time.GetUtcNow():yyyyMMddHHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        var stored = new StoredKey(kid, Convert.ToBase64String(key.ExportPkcs8PrivateKey()),
            Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), time.GetUtcNow(), null);
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

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private sealed record StoredKey(string Kid, string PrivateKey, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);
}
