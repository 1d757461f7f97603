using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ReviewerPortal.Client;

/// <summary>A signed approval receipt as the API returns it.</summary>
public sealed record ApprovalReceipt(string Payload, string Signature, string Kid);

/// <summary>What a verified receipt states; <c>AuditSequence</c>/<c>AuditHash</c>: the tenant's audit head when it was issued.</summary>
public sealed record ReceiptClaims(string ApprovalId, string Tenant, string JobId, string JobHash, string PolicySnapshot,
    string Decision, IReadOnlyList<string> Deciders, DateTimeOffset DecidedAt, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, string Kid,
    long? AuditSequence = null, string? AuditHash = null);

/// <summary>A tenant's receipt-signing public key (ECDSA P-256, SubjectPublicKeyInfo, base64).</summary>
public sealed record PublicSigningKey(string Kid, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);

/// <summary>
/// Verifies a receipt offline, with the tenant's public keys only: an executor proves it holds a real approval for
/// this exact job without holding any secret.
/// </summary>
public static class ReceiptVerifier
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>True when the signature is valid, the receipt is current, approves and names <paramref name="jobHash"/>.</summary>
    public static bool Verify(ApprovalReceipt receipt, IEnumerable<PublicSigningKey> keys, string jobHash, DateTimeOffset now,
        out ReceiptClaims? claims, out string reason)
    {
        claims = null;
        var key = keys.FirstOrDefault(k => k.Kid == receipt.Kid);
        if (key is null)
        {
            reason = "unknown key";
            return false;
        }
        using var ecdsa = ECDsa.Create();
        ecdsa.ImportSubjectPublicKeyInfo(Convert.FromBase64String(key.PublicKey), out _);
        byte[] signature;
        try
        {
            var padded = receipt.Signature.Replace('-', '+').Replace('_', '/');
            signature = Convert.FromBase64String(padded + new string('=', (4 - padded.Length % 4) % 4));
        }
        catch (FormatException)
        {
            reason = "malformed signature";
            return false;
        }
        if (!ecdsa.VerifyData(Encoding.UTF8.GetBytes(receipt.Payload), signature, HashAlgorithmName.SHA256))
        {
            reason = "bad signature";
            return false;
        }
        claims = JsonSerializer.Deserialize<ReceiptClaims>(receipt.Payload, Json);
        if (claims is null || claims.Kid != receipt.Kid)
        {
            reason = "malformed payload";
            return false;
        }
        if (now > claims.ExpiresAt)
        {
            reason = "expired";
            return false;
        }
        if (claims.Decision != "approved")
        {
            reason = $"decision is {claims.Decision}";
            return false;
        }
        if (!string.Equals(claims.JobHash, jobHash, StringComparison.Ordinal))
        {
            reason = "a different job";
            return false;
        }
        reason = "valid";
        return true;
    }
}
