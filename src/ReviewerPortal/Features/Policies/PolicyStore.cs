using System.Collections.Concurrent;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Policies;

/// <summary>One published version of a tenant's policy.</summary>
public sealed record PolicyVersion(
    string Tenant,
    int Version,
    string Snapshot,
    string Yaml,
    DateTimeOffset PublishedAt,
    string PublishedBy,
    PolicyDocument Document);

public sealed record PolicyHistoryEntry(int Version, string Snapshot, DateTimeOffset PublishedAt, string PublishedBy);

/// <summary>
/// Every published policy version, kept in Redis under the tenant's hash tag and identified by its snapshot
/// (the SHA-256 of its canonical form). Parsed documents are cached by snapshot: a snapshot never changes meaning.
/// </summary>
public sealed class PolicyStore(RedisConnection redis)
{
    private readonly ConcurrentDictionary<string, PolicyDocument> _parsed = new();

    /// <summary>Published versions never change (a snapshot is written once), so each is read from Redis once.</summary>
    private readonly ConcurrentDictionary<(string Tenant, string Snapshot), PolicyVersion> _versions = new();

    private IDatabase Db => redis.Database;

    public async Task<string?> GetCurrentSnapshotAsync(string tenant) =>
        await Db.StringGetAsync(RedisKeys.PolicyCurrent(tenant));

    public async Task<PolicyVersion?> GetCurrentAsync(string tenant)
    {
        var snapshot = await GetCurrentSnapshotAsync(tenant);
        return snapshot is null ? null : await GetVersionAsync(tenant, snapshot);
    }

    public async Task<PolicyVersion?> GetVersionAsync(string tenant, string snapshot)
    {
        if (_versions.TryGetValue((tenant, snapshot), out var known))
        {
            return known;
        }
        var f = (await Db.HashGetAllAsync(RedisKeys.PolicyVersion(tenant, snapshot)))
            .ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        if (f.Count == 0)
        {
            return null;
        }
        var yaml = f.GetValueOrDefault("yaml") ?? "";
        var document = _parsed.GetOrAdd(snapshot, _ => PolicyParser.Parse(yaml).Document
            ?? throw new InvalidOperationException($"Stored policy {snapshot} of {tenant} no longer parses."));
        return _versions[(tenant, snapshot)] = new PolicyVersion(
            tenant,
            int.TryParse(f.GetValueOrDefault("version"), out var v) ? v : 0,
            snapshot,
            yaml,
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(f.GetValueOrDefault("publishedAt") ?? "0")),
            f.GetValueOrDefault("publishedBy") ?? "",
            document);
    }

    public async Task<IReadOnlyList<PolicyHistoryEntry>> HistoryAsync(string tenant)
    {
        var entries = await Db.ListRangeAsync(RedisKeys.PolicyHistory(tenant));
        return [.. entries.Select(e => ParseHistory((string)e!)).Reverse()];
    }

    /// <summary>Publishes a parsed document as the tenant's current policy. Null when it is the current one already.</summary>
    public async Task<int?> PublishAsync(string tenant, PolicyDocument document, string yaml, string publishedBy,
        DateTimeOffset at, string auditJson) =>
        (await PublishIfCurrentAsync(tenant, document, yaml, publishedBy, at, auditJson, null)).Version;

    /// <summary>
    /// Publishes as <see cref="PublishAsync"/>, only while the current snapshot is still <paramref name="expectedCurrent"/>
    /// (null: any): <c>ok</c> with the version, <c>unchanged</c>, or <c>stale</c> when another version was published since.
    /// </summary>
    public async Task<(string Status, int? Version)> PublishIfCurrentAsync(string tenant, PolicyDocument document, string yaml, string publishedBy,
        DateTimeOffset at, string auditJson, string? expectedCurrent)
    {
        var ms = at.ToUnixTimeMilliseconds();
        RedisKey[] keys =
        [
            RedisKeys.PolicyCurrent(tenant), RedisKeys.PolicyVersion(tenant, document.Snapshot),
            RedisKeys.PolicyHistory(tenant), RedisKeys.PolicyCounter(tenant), RedisKeys.AuditOutbox(tenant),
        ];
        RedisValue[] args =
        [
            document.Snapshot, $"{document.Snapshot}|{ms}|{publishedBy}", auditJson, expectedCurrent ?? "",
            "yaml", yaml, "publishedAt", ms, "publishedBy", publishedBy,
        ];
        var (status, value) = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.PublishPolicy, keys, args));
        _parsed.TryAdd(document.Snapshot, document);
        return (status, status == "ok" ? int.Parse(value!) : null);
    }

    private static PolicyHistoryEntry ParseHistory(string entry)
    {
        var parts = entry.Split('|', 4);
        return new PolicyHistoryEntry(int.Parse(parts[0]), parts[1],
            DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(parts[2])), parts[3]);
    }
}
