using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Data;

/// <summary>
/// <c>DataProtection:Certificate</c>: the Data Protection key ring in the database is encrypted with an X.509
/// certificate, so whoever reads the database gets no key; only instances that hold the certificate read the ring.
/// </summary>
public sealed class DataProtectionCertificateTests
{
    [Fact]
    public async Task Key_ring_read_from_the_database_holds_no_plain_key_and_only_an_instance_with_the_certificate_reads_it()
    {
        var data = TestServers.NewTempDirectory("dp-cert");
        var (path, password) = NewCertificate(data);
        var withCertificate = new Dictionary<string, string?>
        {
            ["DataProtection:Certificate:Path"] = path,
            ["DataProtection:Certificate:Password"] = password,
        };
        string protectedText;
        await using (var first = await TestApp.StartAsync(dataPath: data, settings: withCertificate))
        {
            protectedText = Protector(first).Protect("the secret");
        }

        // The attack: read the key ring's rows straight from the database.
        var rows = await KeyRingRowsAsync(data);
        Assert.NotEmpty(rows);
        foreach (var xml in rows)
        {
            Assert.DoesNotContain("<value>", xml);          // an unencrypted <masterKey> holds its key in <value>
            Assert.Contains("<encryptedSecret", xml);
            Assert.Contains("EncryptedXmlDecryptor", xml);  // encrypted to the certificate (XML encryption)
        }

        await using (var second = await TestApp.StartAsync(dataPath: data, settings: withCertificate))
        {
            Assert.Equal("the secret", Protector(second).Unprotect(protectedText));
        }
        // Without the certificate the ring cannot be read: not what the first instance protected (here the audit chain's
        // key already, so the start itself fails; were it to start, Unprotect would).
        var refused = await Record.ExceptionAsync(async () =>
        {
            await using var without = await TestApp.StartAsync(dataPath: data);
            Protector(without).Unprotect(protectedText);
        });
        Assert.NotNull(refused);
        Assert.Contains(Chain(refused), e => e is CryptographicException);
    }

    [Fact]
    public async Task Start_fails_naming_the_setting_when_the_certificate_file_is_missing_or_the_password_wrong()
    {
        var data = TestServers.NewTempDirectory("dp-cert-bad");
        var (path, _) = NewCertificate(data);

        var wrong = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(dataPath: data, settings: new Dictionary<string, string?>
        {
            ["DataProtection:Certificate:Path"] = path,
            ["DataProtection:Certificate:Password"] = "not the password",
        }));
        Assert.Contains("DataProtection:Certificate:Password", wrong.ToString());

        var missing = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(dataPath: data, settings: new Dictionary<string, string?>
        {
            ["DataProtection:Certificate:Path"] = Path.Combine(data, "nowhere.pfx"),
            ["DataProtection:Certificate:Password"] = "x",
        }));
        Assert.Contains("DataProtection:Certificate:Path", missing.ToString());
        Assert.Contains("nowhere.pfx", missing.ToString());
    }

    private static IEnumerable<Exception> Chain(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }

    private static IDataProtector Protector(TestApp app) =>
        app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("tests.dp-certificate");

    /// <summary>A self-signed RSA certificate with its private key, as a password-protected PKCS#12 file.</summary>
    private static (string Path, string Password) NewCertificate(string folder)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=ReviewerPortal key ring (test)", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyEncipherment | X509KeyUsageFlags.DataEncipherment, critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        var path = Path.Combine(folder, "keyring.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pkcs12, password));
        return (path, password);
    }

    private static async Task<List<string>> KeyRingRowsAsync(string data)
    {
        await using var db = new SqliteConnection($"Data Source={Path.Combine(data, "reviewerportal.db")};Pooling=false");
        await db.OpenAsync();
        await using var command = db.CreateCommand();
        command.CommandText = "SELECT Xml FROM DataProtectionKeys";
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }
        return rows;
    }
}
