using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals.Links;

/// <summary>
/// What an action link says: this approver (<see cref="User"/>) may take this <see cref="Verdict"/> on this approval of
/// this tenant, as long as its job hash is <see cref="JobHash"/> and until <see cref="ExpiresAt"/>. <see cref="Id"/> is
/// the link's single-use id (the approve and reject links of one notification share it: one of them decides, once).
/// </summary>
public sealed record ActionLinkToken(string KeyId, string Tenant, string ApprovalId, string JobHash, string User, Verdict Verdict,
    DateTimeOffset ExpiresAt, string Id)
{
    private const string Version = "l1";

    /// <summary>The same link for the other verdict (same id, same expiry).</summary>
    public ActionLinkToken Counterpart => this with { Verdict = Verdict == Verdict.Approve ? Verdict.Reject : Verdict.Approve };

    internal string Payload => string.Join('\n', Version, KeyId, Tenant, ApprovalId, JobHash, User, Verdict == Verdict.Approve ? "approve" : "reject",
        ExpiresAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), Id);

    internal static ActionLinkToken? Parse(string payload)
    {
        var parts = payload.Split('\n');
        if (parts.Length != 9 || parts[0] != Version || parts[6] is not ("approve" or "reject")
            || !long.TryParse(parts[7], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || parts.Any(string.IsNullOrEmpty))
        {
            return null;
        }
        return new ActionLinkToken(parts[1], parts[2], parts[3], parts[4], parts[5], parts[6] == "approve" ? Verdict.Approve : Verdict.Reject,
            DateTimeOffset.FromUnixTimeSeconds(expires), parts[8]);
    }
}

/// <summary>
/// Each tenant's action-link keys: random 32-byte HMAC keys, kept in the tenant's Redis slot only as Data Protection
/// ciphertext (purpose <see cref="Purpose"/>, bound to the tenant), so a key of one tenant never verifies a link of
/// another and Redis alone does not reveal them. <see cref="RotateAsync"/> makes a new key current and keeps the one
/// before valid (links already sent keep working until they expire); older keys are dropped.
/// </summary>
public sealed class ActionLinkKeys(RedisConnection redis, IDataProtectionProvider dataProtection)
{
    public const string Purpose = "ReviewerPortal.ActionLinks.v1";
    private const string Current = "current";
    private const string Previous = "previous";

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);
    private readonly ConcurrentDictionary<(string Tenant, string Kid), byte[]> _keys = new();

    private IDatabase Db => redis.Database;

    /// <summary>The tenant's current key (created on first use; the first instance to store one wins).</summary>
    public async Task<(string Kid, byte[] Key)> CurrentAsync(string tenant)
    {
        var hash = RedisKeys.ActionLinkKeys(tenant);
        var kid = (string?)await Db.HashGetAsync(hash, Current);
        if (kid is null)
        {
            var (newKid, blob) = NewKey(tenant);
            await Db.HashSetAsync(hash, newKid, blob);
            if (!await Db.HashSetAsync(hash, Current, newKid, When.NotExists))
            {
                await Db.HashDeleteAsync(hash, newKid); // another instance was first
            }
            kid = (string?)await Db.HashGetAsync(hash, Current) ?? newKid;
        }
        return (kid, await KeyAsync(tenant, kid) ?? throw new InvalidOperationException($"Action-link key {kid} of '{tenant}' is missing."));
    }

    /// <summary>The key a link names, if the tenant still has it (current or the one before).</summary>
    public async Task<byte[]?> KeyAsync(string tenant, string kid)
    {
        // Asked every time (one HMGET), so a key rotated out on another instance stops verifying here too.
        var hash = RedisKeys.ActionLinkKeys(tenant);
        var names = await Db.HashGetAsync(hash, [Current, Previous]);
        if (kid != (string?)names[0] && kid != (string?)names[1])
        {
            return null;
        }
        if (_keys.TryGetValue((tenant, kid), out var cached))
        {
            return cached;
        }
        var blob = (string?)await Db.HashGetAsync(hash, kid);
        if (blob is null)
        {
            return null;
        }
        try
        {
            var key = _protector.CreateProtector(tenant).Unprotect(Base64Url.DecodeFromChars(blob));
            return _keys.GetOrAdd((tenant, kid), key);
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException)
        {
            return null; // another ring's key, or damaged: links signed with it no longer verify
        }
    }

    /// <summary>A new current key; the current one stays valid as the previous; the one before that is removed.</summary>
    public async Task<string> RotateAsync(string tenant)
    {
        var hash = RedisKeys.ActionLinkKeys(tenant);
        var names = await Db.HashGetAsync(hash, [Current, Previous]);
        var (kid, blob) = NewKey(tenant);
        var tx = Db.CreateTransaction();
        tx.AddCondition(names[0].IsNull ? Condition.HashNotExists(hash, Current) : Condition.HashEqual(hash, Current, names[0]));
        _ = tx.HashSetAsync(hash, [new(kid, blob), new(Current, kid), new(Previous, names[0].IsNull ? kid : names[0])]);
        if (!names[1].IsNull && names[1] != names[0])
        {
            _ = tx.HashDeleteAsync(hash, names[1]);
        }
        if (!await tx.ExecuteAsync())
        {
            throw new InvalidOperationException($"The action-link key of '{tenant}' was rotated concurrently; try again.");
        }
        return kid;
    }

    private (string Kid, string Blob) NewKey(string tenant)
    {
        var kid = "k" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var blob = Base64Url.EncodeToString(_protector.CreateProtector(tenant).Protect(RandomNumberGenerator.GetBytes(32)));
        return (kid, blob);
    }

    /// <summary>The link's text: base64url(payload) "." base64url(HMAC-SHA256(key, payload)).</summary>
    public async Task<string> SignAsync(ActionLinkToken token)
    {
        var key = await KeyAsync(token.Tenant, token.KeyId) ?? throw new InvalidOperationException($"No action-link key {token.KeyId} for '{token.Tenant}'.");
        var payload = Encoding.UTF8.GetBytes(token.Payload);
        return Base64Url.EncodeToString(payload) + "." + Base64Url.EncodeToString(HMACSHA256.HashData(key, payload));
    }

    /// <summary>The token if the text is well formed and its MAC verifies under the tenant's key it names; else null.</summary>
    public async Task<ActionLinkToken?> VerifyAsync(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.Length > 2048 || text.Split('.') is not [var encoded, var mac])
        {
            return null;
        }
        byte[] payload, signature;
        try
        {
            payload = Base64Url.DecodeFromChars(encoded);
            signature = Base64Url.DecodeFromChars(mac);
        }
        catch (FormatException)
        {
            return null;
        }
        string decoded;
        try
        {
            decoded = new UTF8Encoding(false, true).GetString(payload);
        }
        catch (ArgumentException)
        {
            return null;
        }
        if (ActionLinkToken.Parse(decoded) is not { } token || !Tenants.TenantIds.IsValid(token.Tenant))
        {
            return null;
        }
        var key = await KeyAsync(token.Tenant, token.KeyId);
        return key is not null && CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(key, payload), signature) ? token : null;
    }
}
