namespace ReviewerPortal.Features.Receipts;

/// <summary>
/// Holds the tenants' receipt-signing keys (ECDSA P-256) and signs with them. The default,
/// <see cref="ProtectedReceiptSigner"/>, keeps each private key in Redis encrypted with Data Protection; a key vault or
/// an HSM can replace it by registering another implementation (the private key then never enters the app).
/// </summary>
public interface IReceiptSigner
{
    /// <summary>
    /// Signs with the tenant's current key (one is created on first use): <paramref name="payloadFor"/> gets the key's
    /// id and returns the text to sign, so the id can be part of what is signed. Answers the text, its signature
    /// (ECDSA P-256 / SHA-256 over the UTF-8 bytes, IEEE P1363, base64url) and the key id.
    /// </summary>
    Task<ApprovalReceipt> SignAsync(string tenant, Func<string, string> payloadFor, CancellationToken cancellationToken = default);

    /// <summary>The tenant's public keys, newest first, retired ones included so old signatures still verify.</summary>
    Task<IReadOnlyList<PublicSigningKey>> PublicKeysAsync(string tenant, CancellationToken cancellationToken = default);

    /// <summary>Makes a new key current and retires the previous one (its public half stays published); answers the new key's id.</summary>
    Task<string> RotateAsync(string tenant, CancellationToken cancellationToken = default);
}
