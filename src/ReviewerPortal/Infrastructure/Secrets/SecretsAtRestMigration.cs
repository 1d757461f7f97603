using ReviewerPortal.Features.Receipts;
using ReviewerPortal.Features.Tenants;
using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Secrets;

/// <summary>
/// At start, encrypts what older versions stored in plain text in Redis: each tenant's webhook, dispatch and SMTP
/// secrets and its receipt-signing private keys. Runs after Redis and the database (the Data Protection key ring) are
/// up; a failure is logged and the app starts anyway, since every read and write encrypts plain values too.
/// </summary>
public sealed class SecretsAtRestMigration(TenantStore tenants, IReceiptSigner signer, ILogger<SecretsAtRestMigration> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var sealedSettings = 0;
            foreach (var tenant in await tenants.ListAsync())
            {
                cancellationToken.ThrowIfCancellationRequested();
                sealedSettings += await tenants.SealPlainSecretsAsync(tenant) ? 1 : 0;
                if (signer is ProtectedReceiptSigner keys)
                {
                    await keys.SealPlainKeysAsync(tenant);
                }
            }
            if (sealedSettings > 0)
            {
                logger.LogInformation("Encrypted the plain-text secrets older versions stored for {Count} tenant(s)", sealedSettings);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidOperationException)
        {
            logger.LogWarning(ex, "Encrypting secrets stored in plain text by older versions failed; they are encrypted when next read or written");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
