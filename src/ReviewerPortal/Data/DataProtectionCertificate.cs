using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ReviewerPortal.Data;

/// <summary>
/// <c>DataProtection:Certificate</c>: protect the Data Protection key ring at rest with an X.509 certificate (opt-in).
/// Either a PKCS#12 file (<see cref="Path"/> + <see cref="Password"/>) or a certificate with its private key in the
/// current user's or the machine's "My" store (<see cref="Thumbprint"/>). Unset: the key ring is stored unencrypted.
/// </summary>
public sealed class DataProtectionCertificateOptions
{
    public const string Section = "DataProtection:Certificate";

    /// <summary>A PKCS#12 (.pfx/.p12) file holding the certificate and its RSA private key; relative to the content root.</summary>
    public string? Path { get; set; }

    /// <summary>The PKCS#12 file's password.</summary>
    public string? Password { get; set; }

    /// <summary>Instead of a file: the thumbprint of a certificate in CurrentUser\My or LocalMachine\My.</summary>
    public string? Thumbprint { get; set; }

    public bool IsSet => !string.IsNullOrWhiteSpace(Path) || !string.IsNullOrWhiteSpace(Thumbprint);
}

/// <summary>
/// Loads the configured certificate at start: the start fails, naming the setting, when the file is missing, the
/// password wrong, the thumbprint unknown or the private key absent. Every instance that shares the key ring needs the
/// same certificate: one without it cannot read the ring (nor what it protected).
/// </summary>
public static class DataProtectionCertificate
{
    /// <summary>The certificate <paramref name="o"/> names, or null when the setting is not used.</summary>
    public static X509Certificate2? Load(DataProtectionCertificateOptions o, string contentRoot)
    {
        if (!o.IsSet)
        {
            return null;
        }
        X509Certificate2 certificate;
        if (!string.IsNullOrWhiteSpace(o.Path))
        {
            var path = System.IO.Path.GetFullPath(o.Path, contentRoot);
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"DataProtection:Certificate:Path: the file {path} does not exist.");
            }
            try
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, o.Password, X509KeyStorageFlags.DefaultKeySet);
            }
            catch (CryptographicException ex)
            {
                throw new InvalidOperationException(
                    $"DataProtection:Certificate:Password does not open {path} (or it is no PKCS#12 file): {ex.Message}", ex);
            }
        }
        else
        {
            certificate = FromStore(o.Thumbprint!.Replace(" ", "", StringComparison.Ordinal))
                ?? throw new InvalidOperationException(
                    $"DataProtection:Certificate:Thumbprint: no certificate {o.Thumbprint} in CurrentUser\\My or LocalMachine\\My.");
        }
        if (certificate.GetRSAPrivateKey() is null)
        {
            throw new InvalidOperationException(
                $"DataProtection:Certificate: the certificate {certificate.Subject} ({certificate.Thumbprint}) has no RSA private key.");
        }
        return certificate;
    }

    private static X509Certificate2? FromStore(string thumbprint)
    {
        foreach (var location in new[] { StoreLocation.CurrentUser, StoreLocation.LocalMachine })
        {
            try
            {
                using var store = new X509Store(StoreName.My, location);
                store.Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly);
                var found = store.Certificates.Find(X509FindType.FindByThumbprint, thumbprint, validOnly: false);
                if (found.Count > 0)
                {
                    return found[0];
                }
            }
            catch (CryptographicException)
            {
                // That store does not exist here.
            }
        }
        return null;
    }
}
