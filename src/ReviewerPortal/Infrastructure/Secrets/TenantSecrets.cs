using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.DataProtection;

namespace ReviewerPortal.Infrastructure.Secrets;

/// <summary>
/// A tenant's secrets at rest (the dispatch webhook's and the notification webhook's HMAC secrets, the SMTP password):
/// stored as <c>dp1:</c> + Data Protection ciphertext (base64url) under the purpose <see cref="Purpose"/>, bound to the
/// tenant, so neither Redis nor its append-only log ever holds them in plain text. Settings carry the stored form;
/// only the code that sends with a secret calls <see cref="Reveal"/>, right before it uses it.
/// </summary>
/// <remarks>
/// Values written by versions before this one are plain text (no prefix): <see cref="Reveal"/> still reads them, and
/// <see cref="SealIfPlain"/> encrypts them on the next write of the settings (and at start, <see cref="SecretsAtRestMigration"/>).
/// </remarks>
public sealed class TenantSecrets(IDataProtectionProvider dataProtection)
{
    public const string Purpose = "ReviewerPortal.TenantSecrets.v1";
    public const string Prefix = "dp1:";

    private readonly IDataProtector _protector = dataProtection.CreateProtector(Purpose);

    /// <summary>Whether a stored value is in the encrypted form (null and empty count as nothing to encrypt).</summary>
    public static bool IsSealed(string? stored) => string.IsNullOrEmpty(stored) || stored.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>Encrypts a secret as given by an admin (whatever it looks like).</summary>
    public string Protect(string tenant, string secret) =>
        Prefix + Base64Url.EncodeToString(_protector.CreateProtector(tenant).Protect(Encoding.UTF8.GetBytes(secret)));

    /// <summary>The stored form of a value read from storage: plain text from an older version is encrypted, the rest kept.</summary>
    public string? SealIfPlain(string tenant, string? stored) => IsSealed(stored) ? stored : Protect(tenant, stored!);

    /// <summary>The secret itself, for the one call that sends with it; plain text from an older version as it is.</summary>
    /// <exception cref="InvalidOperationException">The value cannot be decrypted (a Data Protection key ring without its key).</exception>
    public string? Reveal(string tenant, string? stored)
    {
        if (string.IsNullOrEmpty(stored) || !stored.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return stored;
        }
        try
        {
            return Encoding.UTF8.GetString(_protector.CreateProtector(tenant).Unprotect(Base64Url.DecodeFromChars(stored.AsSpan(Prefix.Length))));
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException)
        {
            throw new InvalidOperationException(
                $"A secret of tenant '{tenant}' cannot be decrypted: the Data Protection key ring that encrypted it is not available " +
                "(every instance must share the ring). Set the secret again in the tenant's settings.", ex);
        }
    }
}
