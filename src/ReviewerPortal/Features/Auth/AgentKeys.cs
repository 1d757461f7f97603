using Microsoft.Extensions.Caching.Memory;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// What an admin does with a tenant's agent keys, from the portal or the API: list, create (the secret shown once),
/// revoke. Each change is audited; a revocation is announced to every instance, which drop the key from their lookup
/// cache at once, so a revoked key stops working everywhere within milliseconds.
/// </summary>
public sealed class AgentKeys(ApiKeyService keys, AuditLog audit, RedisConnection redis, IMemoryCache cache,
    Approvals.HubConnections connections, ILogger<AgentKeys> logger)
{
    public static RedisChannel Revocations { get; } = RedisChannel.Literal("rp:key-revoked");

    public Task<IReadOnlyList<ApiKey>> ListAsync(string tenant, CancellationToken cancellationToken) =>
        keys.ListAgentKeysAsync(tenant, cancellationToken);

    public async Task<(ApiKey Key, string Secret)> CreateAsync(string tenant, string name, Caller by, CancellationToken cancellationToken)
    {
        var (key, secret) = await keys.CreateAgentKeyAsync(tenant, name.Trim(), cancellationToken);
        var entry = audit.NewEntry(tenant, by.Actor, "agent_key_created");
        entry.Details = $"{key.Name} ({key.Prefix}…)";
        await audit.AppendAsync(entry, cancellationToken);
        return (key, secret);
    }

    /// <summary>Revokes the key (null when the tenant has no such key); a key revoked before stays revoked, audited once.</summary>
    public async Task<ApiKey?> RevokeAsync(string tenant, int id, Caller by, CancellationToken cancellationToken)
    {
        var (key, revokedNow) = await keys.RevokeAgentKeyAsync(tenant, id, cancellationToken);
        if (key is null)
        {
            return null;
        }
        cache.Remove(ApiKeyAuthenticationHandler.CacheKey(key.KeyHash));
        connections.Abort(key.KeyHash);
        try
        {
            await redis.Multiplexer.GetSubscriber().PublishAsync(Revocations, key.KeyHash);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The other instances' caches hold a key for at most their lookup cache's lifetime.
            logger.LogWarning(ex, "Revocation of key {Prefix} could not be announced; other instances drop it within 30 s", key.Prefix);
        }
        if (revokedNow)
        {
            var entry = audit.NewEntry(tenant, by.Actor, "agent_key_revoked");
            entry.Details = $"{key.Name} ({key.Prefix}…)";
            await audit.AppendAsync(entry, cancellationToken);
        }
        return key;
    }
}

/// <summary>
/// Drops revoked keys from this instance's lookup cache, and ends the live hub connections opened with them, as soon as
/// any instance revokes one.
/// </summary>
public sealed class KeyRevocationListener(RedisConnection redis, IMemoryCache cache, Approvals.HubConnections connections) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = await redis.Multiplexer.GetSubscriber().SubscribeAsync(AgentKeys.Revocations);
        queue.OnMessage(message =>
        {
            var keyHash = (string)message.Message!;
            cache.Remove(ApiKeyAuthenticationHandler.CacheKey(keyHash));
            connections.Abort(keyHash);
        });
    }

    public Task StopAsync(CancellationToken cancellationToken) => RedisConnection.UnsubscribeQuietlyAsync(redis, AgentKeys.Revocations);
}
