using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ReviewerPortal.Client;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Infrastructure.Secrets;

/// <summary>
/// The attack of the security pass (issue 21, item 1): someone who can read the data folder (the embedded Garnet's
/// append-only log and checkpoints, the SQLite database and its -wal) looks for the tenants' secrets and for any
/// receipt-signing private key. The app runs its own embedded Garnet in a temporary data folder, as in production.
/// </summary>
public sealed class SecretsAtRestTests
{
    private const string DispatchSecret = "dispatch-secret-Zq7XwP4mLk9";
    private const string WebhookSecret = "webhook-secret-Hv3NcR8tYb2";
    private const string SmtpPassword = "smtp-password-Jd6FsT1gQe5";
    private static readonly string[] Secrets = [DispatchSecret, WebhookSecret, SmtpPassword];

    /// <summary>Version 0, then AlgorithmIdentifier id-ecPublicKey: the fixed start of every EC PKCS#8 private key (after its outer SEQUENCE header).</summary>
    private static readonly byte[] EcPkcs8Prefix = [0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

    [Fact]
    public async Task Data_folder_holds_no_tenant_secret_and_no_private_signing_key()
    {
        var logs = new CapturedLogs();
        await using var app = await TestApp.StartAsync(
            settings: new Dictionary<string, string?>
            {
                ["Redis:Configuration"] = "", // the app starts its own embedded Garnet, with its data under Storage:DataPath
                ["Redis:KeyPrefix"] = "",
                ["Dispatch:Enabled"] = "false",
                ["Notifications:Enabled"] = "false",
            },
            services: s => s.AddSingleton<ILoggerProvider>(logs));
        var redis = app.Services.GetRequiredService<RedisConnection>();
        Assert.Equal("embedded", redis.Mode);
        var admin = app.Account("ada");

        var put = await admin.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = "http://127.0.0.1:9/jobs", secret = DispatchSecret },
            notifications = new
            {
                webhookUrl = "http://127.0.0.1:9/notify",
                webhookSecret = WebhookSecret,
                smtp = new { host = "127.0.0.1", port = 2525, from = "portal@example.invalid", userName = "mailer", password = SmtpPassword },
            },
        });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var shown = await (await admin.GetAsync("/api/v1/tenants/acme/settings")).Content.ReadAsStringAsync();
        Assert.Contains("(set)", shown);
        Assert.DoesNotContain(Secrets, shown.Contains);

        // Receipts signed, keys rotated twice: three keys, two of them retired.
        var first = await ApprovedReceiptAsync(app, 1);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/tenants/acme/keys/rotate", null)).StatusCode);
        var second = await ApprovedReceiptAsync(app, 2);
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/api/v1/tenants/acme/keys/rotate", null)).StatusCode);
        var third = await ApprovedReceiptAsync(app, 3);
        var keys = await (await admin.GetAsync("/api/v1/tenants/acme/keys")).Content.ReadFromJsonAsync<PublicKeys>();
        Assert.Equal(3, keys!.Keys.Count);
        foreach (var (receipt, jobHash) in new[] { first, second, third })
        {
            Assert.True(ReceiptVerifier.Verify(receipt, keys.Keys, jobHash, DateTimeOffset.UtcNow, out _, out var reason), reason);
        }

        // Everything on disk: the append-only log flushed, a checkpoint taken, the SQLite -wal as it stands.
        var files = Directory.EnumerateFiles(app.DataPath, "*", SearchOption.AllDirectories).ToList();
        Assert.Contains(files, f => f.EndsWith("reviewerportal.db", StringComparison.Ordinal));
        Assert.Contains(files, f => f.Contains(Path.Combine(app.DataPath, "redis"), StringComparison.Ordinal));
        var found = await DataFolderScan.FindAsync(app, Secrets.Select(s => (s, Encoding.UTF8.GetBytes(s)))
            .Append(("PRIVATE KEY", "PRIVATE KEY"u8.ToArray()))
            .Append(("EC PKCS#8 DER", EcPkcs8Prefix))
            .Concat(Base64Forms(EcPkcs8Prefix).Select(b => ("EC PKCS#8 base64 " + b, Encoding.ASCII.GetBytes(b)))));
        Assert.True(found.Count == 0, "Found on disk: " + string.Join("; ", found));
        Assert.DoesNotContain(logs.Lines, line => Secrets.Any(line.Contains) || line.Contains("PRIVATE KEY", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Receipt_keys_stored_in_plain_text_by_an_older_version_are_encrypted_and_their_receipts_still_verify()
    {
        await using var app = await TestApp.StartAsync();
        var db = app.Services.GetRequiredService<RedisConnection>().Database;
        using var retiredKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var currentKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var created = DateTimeOffset.UtcNow.AddDays(-3);
        // As the previous version stored them: PKCS#8 in base64 beside the public key.
        string Legacy(string kid, ECDsa key, DateTimeOffset? retiredAt) => JsonSerializer.Serialize(new
        {
            kid,
            privateKey = Convert.ToBase64String(key.ExportPkcs8PrivateKey()),
            publicKey = Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()),
            createdAt = created,
            retiredAt,
        }, JsonSerializerOptions.Web);
        await db.KeyDeleteAsync(RedisKeys.SigningKeys("acme"));
        await db.HashSetAsync(RedisKeys.SigningKeys("acme"),
        [
            new HashEntry("acme-old", Legacy("acme-old", retiredKey, created.AddDays(1))),
            new HashEntry("acme-now", Legacy("acme-now", currentKey, null)),
        ]);
        await db.StringSetAsync(RedisKeys.SigningKeyCurrent("acme"), "acme-now");
        // A receipt the previous version issued with the key that is retired now.
        var oldPayload = JsonSerializer.Serialize(new ReceiptClaims("apr_old", "acme", "job_old", new string('b', 64), "snap", "approved", ["alice"],
            created, created, DateTimeOffset.UtcNow.AddHours(1), "acme-old"), JsonSerializerOptions.Web);
        var oldReceipt = new ApprovalReceipt(oldPayload,
            Convert.ToBase64String(retiredKey.SignData(Encoding.UTF8.GetBytes(oldPayload), HashAlgorithmName.SHA256)).TrimEnd('=').Replace('+', '-').Replace('/', '_'),
            "acme-old");

        var keys = await (await app.Agent("acme").GetAsync("/api/v1/tenants/acme/keys")).Content.ReadFromJsonAsync<PublicKeys>();
        var (receipt, jobHash) = await ApprovedReceiptAsync(app, 11);

        Assert.True(ReceiptVerifier.Verify(oldReceipt, keys!.Keys, new string('b', 64), DateTimeOffset.UtcNow, out _, out var reason), reason);
        Assert.Equal("acme-now", receipt.Kid); // the migrated key signs on
        Assert.True(ReceiptVerifier.Verify(receipt, keys.Keys, jobHash, DateTimeOffset.UtcNow, out _, out reason), reason);
        var stored = (await db.HashGetAllAsync(RedisKeys.SigningKeys("acme"))).ToDictionary(e => (string)e.Name!, e => JsonDocument.Parse((string)e.Value!).RootElement);
        Assert.All(stored.Values, k => Assert.False(k.TryGetProperty("privateKey", out _), "no plain PKCS#8 left"));
        Assert.True(stored["acme-now"].TryGetProperty("protectedKey", out _));
        Assert.False(stored["acme-old"].TryGetProperty("protectedKey", out _), "a retired key keeps only its public half");
        foreach (var key in new[] { retiredKey, currentKey })
        {
            Assert.DoesNotContain(Convert.ToBase64String(key.ExportPkcs8PrivateKey()),
                string.Join('\n', stored.Values.Select(v => v.GetRawText())));
        }
    }

    [Fact]
    public async Task Tenant_secrets_stored_in_plain_text_by_an_older_version_are_encrypted_at_start_and_still_sign()
    {
        await using var receiver = WebhookReceiver.Start();
        var dataPath = TestServers.NewTempDirectory("legacy-secrets"); // one SQLite file, so both starts share the Data Protection key ring
        var prefix = $"t{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false", ["Notifications:Enabled"] = "false" };
        await using (var older = await TestApp.StartAsync(settings: settings, dataPath: dataPath, keyPrefix: prefix))
        {
            // As the previous version stored them: in plain text, in the settings hash and in the workflow's JSON.
            var db = older.Services.GetRequiredService<RedisConnection>().Database;
            await db.HashSetAsync(RedisKeys.Settings("acme"),
            [
                new HashEntry("dispatchKind", "webhook"),
                new HashEntry("dispatchTarget", receiver.Url),
                new HashEntry("dispatchSecret", DispatchSecret),
                new HashEntry("workflow", JsonSerializer.Serialize(new WorkflowSettings
                {
                    Notifications = new NotificationSettings
                    {
                        WebhookUrl = "http://127.0.0.1:9/notify",
                        WebhookSecret = WebhookSecret,
                        Smtp = new SmtpSettings { Host = "127.0.0.1", Port = 2525, From = "portal@example.invalid", UserName = "mailer", Password = SmtpPassword },
                    },
                }, AppJsonContext.Default.WorkflowSettings)),
                new HashEntry("rev", Guid.NewGuid().ToString("N")),
            ]);
        }

        await using var app = await TestApp.StartAsync(settings: settings, dataPath: dataPath, keyPrefix: prefix);

        var raw = string.Join('\n', (await app.Services.GetRequiredService<RedisConnection>().Database.HashGetAllAsync(RedisKeys.Settings("acme")))
            .Select(e => $"{e.Name}={e.Value}"));
        Assert.DoesNotContain(Secrets, raw.Contains);
        Assert.Contains("mailer", raw); // the rest of the settings as they were
        var shown = await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal("(set)", shown.GetProperty("notifications").GetProperty("webhookSecret").GetString());
        Assert.Equal("(set)", shown.GetProperty("notifications").GetProperty("smtp").GetProperty("password").GetString());
        var submitted = await app.Agent("acme").SubmitPayment(12);
        await app.Account("alice").Approve(submitted.Str("approvalId"));
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        var delivered = Assert.Single(receiver.Requests);
        Assert.Equal("sha256=" + Dispatcher.Sign(DispatchSecret, delivered.Body), delivered.Signature);
        Directory.Delete(dataPath, recursive: true);
    }

    private static async Task<(ApprovalReceipt Receipt, string JobHash)> ApprovedReceiptAsync(TestApp app, int amount)
    {
        var submitted = await app.Agent("acme").SubmitPayment(amount);
        var id = submitted.Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        var receipt = await (await app.Agent("acme").GetAsync($"/api/v1/approvals/{id}/receipt")).Content.ReadFromJsonAsync<ApprovalReceipt>();
        return (receipt!, submitted.Str("jobHash"));
    }

    /// <summary>The base64 (and base64url) text of <paramref name="bytes"/> at each of the three alignments, without the edge characters shared with neighbours.</summary>
    private static IEnumerable<string> Base64Forms(byte[] bytes)
    {
        for (var shift = 0; shift < 3; shift++)
        {
            var text = Convert.ToBase64String([.. new byte[shift], .. bytes]);
            var from = (shift * 8 + 5) / 6;
            var to = (shift + bytes.Length) * 8 / 6;
            var inner = text[from..to];
            yield return inner;
            yield return inner.Replace('+', '-').Replace('/', '_');
        }
    }

    private sealed record PublicKeys(string Tenant, string Algorithm, IReadOnlyList<PublicSigningKey> Keys);

    /// <summary>Every log line (and exception) the app writes, at every level.</summary>
    private sealed class CapturedLogs : ILoggerProvider, ILogger
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => this;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _lines.Enqueue(formatter(state, exception) + " " + exception);

        public void Dispose()
        {
        }
    }
}
