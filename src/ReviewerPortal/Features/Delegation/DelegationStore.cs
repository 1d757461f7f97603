using System.Text.Json;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Delegation;

/// <summary>
/// "<see cref="User"/> is away from <see cref="From"/> until <see cref="Until"/>; <see cref="DelegateTo"/> decides for them
/// meanwhile." One per account; a new one replaces the old.
/// </summary>
public sealed record Delegation(string User, string DelegateTo, DateTimeOffset From, DateTimeOffset Until, DateTimeOffset SetAt, string SetBy)
{
    /// <summary>In force at <paramref name="now"/>: from is inclusive, until exclusive.</summary>
    public bool ActiveAt(DateTimeOffset now) => From <= now && now < Until;
}

/// <summary>
/// The delegations, in one Redis hash (user → JSON): every instance sees a change at once, and an admin lists them all
/// with one read. Ended delegations are removed; lapsed ones are skipped by every read and stay until their user sets or
/// ends the next (one field per account at most; the account audit stream keeps the history). Reads never write: a
/// read that pruned a lapsed entry could delete a new delegation set between its read and its delete.
/// </summary>
public sealed class DelegationStore(RedisConnection redis, TimeProvider time)
{
    private IDatabase Db => redis.Database;

    public async Task<Delegation?> GetAsync(string user)
    {
        var json = await Db.HashGetAsync(RedisKeys.Delegations, user);
        return json.IsNullOrEmpty ? null : JsonSerializer.Deserialize((string)json!, AppJsonContext.Default.Delegation);
    }

    /// <summary>Every delegation not yet over (current or planned), by user name.</summary>
    public async Task<IReadOnlyList<Delegation>> ListAsync()
    {
        var now = time.GetUtcNow();
        return [.. (await Db.HashGetAllAsync(RedisKeys.Delegations))
            .Select(field => JsonSerializer.Deserialize((string)field.Value!, AppJsonContext.Default.Delegation))
            .Where(d => d is not null && d.Until > now)
            .Select(d => d!)
            .OrderBy(d => d.User, StringComparer.Ordinal)];
    }

    public Task SetAsync(Delegation delegation) =>
        Db.HashSetAsync(RedisKeys.Delegations, delegation.User, JsonSerializer.Serialize(delegation, AppJsonContext.Default.Delegation));

    /// <summary>Ends <paramref name="user"/>'s delegation; the one removed, or null when there was none.</summary>
    public async Task<Delegation?> RemoveAsync(string user)
    {
        var existing = await GetAsync(user);
        return existing is not null && await Db.HashDeleteAsync(RedisKeys.Delegations, user) ? existing : null;
    }

    /// <summary>
    /// The people away right now who named <paramref name="delegateTo"/>, by user name. Only direct delegations count:
    /// alice → bob and bob → carol never let carol act for alice.
    /// </summary>
    public async Task<IReadOnlyList<Delegation>> AwayForAsync(string delegateTo)
    {
        var now = time.GetUtcNow();
        return [.. (await ListAsync()).Where(d => d.ActiveAt(now) && string.Equals(d.DelegateTo, delegateTo, StringComparison.Ordinal))];
    }

    /// <summary>
    /// Who receives a notification addressed to <paramref name="recipients"/> now: each person away is replaced by their
    /// delegate (once; a delegate who is away too is not followed further).
    /// </summary>
    public async Task<IReadOnlyList<string>> RecipientsAsync(IReadOnlyList<string> recipients)
    {
        if (recipients.Count == 0)
        {
            return recipients;
        }
        var now = time.GetUtcNow();
        var away = (await ListAsync()).Where(d => d.ActiveAt(now)).ToDictionary(d => d.User, d => d.DelegateTo, StringComparer.Ordinal);
        return [.. recipients.Select(r => away.GetValueOrDefault(r, r)).Distinct(StringComparer.Ordinal)];
    }
}
