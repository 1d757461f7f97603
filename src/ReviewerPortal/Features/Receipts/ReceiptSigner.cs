using System.Text.Json;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Features.Receipts;

/// <summary>A signed statement that an approval was decided, for this exact job, by these people.</summary>
/// <param name="Payload">The signed JSON text (verify these exact bytes, then read them).</param>
/// <param name="Signature">ECDSA P-256 / SHA-256 over the UTF-8 payload, IEEE P1363 format, base64url.</param>
/// <param name="Kid">The tenant key that signed it.</param>
public sealed record ApprovalReceipt(string Payload, string Signature, string Kid);

/// <param name="AuditSequence">A committed head of the tenant's audit chain: for a decision's own receipt the head right after the
/// commit that wrote the decision, otherwise the head when the receipt was issued. Its sequence…</param>
/// <param name="AuditHash">…and its chain hash (compare with the signed audit checkpoints).</param>
public sealed record ReceiptClaims(string ApprovalId, string Tenant, string JobId, string JobHash, string PolicySnapshot,
    string Decision, IReadOnlyList<string> Deciders, DateTimeOffset DecidedAt, DateTimeOffset IssuedAt, DateTimeOffset ExpiresAt, string Kid,
    long? AuditSequence = null, string? AuditHash = null);

public sealed record PublicSigningKey(string Kid, string PublicKey, DateTimeOffset CreatedAt, DateTimeOffset? RetiredAt);

public sealed record PublicKeysResponse(string Tenant, string Algorithm, IReadOnlyList<PublicSigningKey> Keys);

/// <summary>
/// Issues receipts: the decision's claims, signed with the tenant's current key by the <see cref="IReceiptSigner"/>
/// that holds the keys (by default <see cref="ProtectedReceiptSigner"/>). An executor verifies a receipt offline with
/// the public keys only.
/// </summary>
public sealed class ReceiptSigner(IReceiptSigner keys, TimeProvider time)
{
    public static readonly TimeSpan Validity = TimeSpan.FromHours(24);
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>A receipt for a decided approval; null while it is pending.</summary>
    public async Task<ApprovalReceipt?> IssueAsync(Approval approval, Audit.AuditHead? auditHead = null)
    {
        if (approval.State == ApprovalStates.Pending || approval.DecidedAt is null)
        {
            return null;
        }
        var now = time.GetUtcNow();
        return await keys.SignAsync(approval.Tenant, kid => JsonSerializer.Serialize(
            new ReceiptClaims(approval.Id, approval.Tenant, approval.JobId, approval.JobHash, approval.PolicySnapshot,
                approval.State, approval.DecidedBy is null ? [] : [approval.DecidedBy], approval.DecidedAt.Value, now, now + Validity, kid,
                auditHead?.Sequence, auditHead?.Hash),
            Json));
    }

    /// <summary>Signs another statement of the tenant (an audit checkpoint) with its current receipt key, as receipts are.</summary>
    /// <param name="payloadFor">The payload text, given the signing key's id.</param>
    public Task<ApprovalReceipt> SignAsync(string tenant, Func<string, string> payloadFor) => keys.SignAsync(tenant, payloadFor);

    public Task<IReadOnlyList<PublicSigningKey>> PublicKeysAsync(string tenant) => keys.PublicKeysAsync(tenant);

    /// <summary>Makes a new key current; the previous one is retired but stays published for verification.</summary>
    public Task<string> RotateAsync(string tenant) => keys.RotateAsync(tenant);
}
