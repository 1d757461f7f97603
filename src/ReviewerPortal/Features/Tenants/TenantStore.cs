using System.Text.RegularExpressions;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Secrets;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Tenants;

/// <summary>Per-tenant settings an admin controls.</summary>
public sealed record TenantSettings
{
    public static readonly TimeSpan DefaultApprovalTtl = TimeSpan.FromHours(24);
    public static readonly TimeSpan MinApprovalTtl = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxApprovalTtl = TimeSpan.FromDays(30);

    public required string Tenant { get; init; }
    public string? DisplayName { get; init; }
    public TimeSpan ApprovalTtl { get; init; } = DefaultApprovalTtl;

    /// <summary>User names who may decide this tenant's approvals.</summary>
    public IReadOnlyList<string> Approvers { get; init; } = [];

    /// <summary>Where allowed and approved jobs are published; null: agents run allowed jobs themselves.</summary>
    public DispatchSink? Dispatch { get; init; }

    /// <summary>SLA, reminders, escalation, quorum, separation of duties, resubmission, notifications.</summary>
    public WorkflowSettings Workflow { get; init; } = new();

    /// <summary>Payload fields masked for people and the tenant's own secret patterns (see <see cref="Redaction.Redactor"/>).</summary>
    public Redaction.RedactionSettings Redaction { get; init; } = Features.Redaction.RedactionSettings.None;

    /// <summary>The Slack app requests are posted to and clicks come from; null: no Slack.</summary>
    public Slack.SlackSettings? Slack { get; init; }

    /// <summary>Whether the person is one of the tenant's approvers or on one of its escalation levels (reads the tenant).</summary>
    public bool Involves(string name) => EligibleAt(Workflow.Escalation.Count).Contains(name, StringComparer.Ordinal);

    /// <summary>Who may decide at an escalation level: the approvers, widened by every level reached so far.</summary>
    public IReadOnlyList<string> EligibleAt(int level) =>
        [.. Approvers.Concat(Workflow.Escalation.Take(level).SelectMany(l => l.Approvers)).Distinct(StringComparer.Ordinal)];

    /// <summary>Who is asked at a level: the approvers at 0, that level's people after.</summary>
    public IReadOnlyList<string> NotifiedAt(int level) =>
        level == 0 || level > Workflow.Escalation.Count ? Approvers : Workflow.Escalation[level - 1].Approvers;
}

/// <summary>
/// A dispatch sink: <c>redis</c> pushes each job onto a list its workers pop (key <c>rp:{tenant}:sink:{Target}</c>,
/// under the tenant's hash tag); <c>webhook</c> POSTs it to <see cref="Target"/>, signed with <see cref="Secret"/>.
/// </summary>
public sealed record DispatchSink(string Kind, string Target, string? Secret)
{
    public const string Redis = "redis";
    public const string Webhook = "webhook";
}

public static partial class TenantIds
{
    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex Pattern();

    public static bool IsValid(string? tenant) => tenant is not null && Pattern().IsMatch(tenant);
}

/// <summary>
/// Tenants and their settings, in Redis next to their approvals. Settings are read on every call (who may decide,
/// the workflow), so each instance keeps the last copy it read with its revision token: one HGET of the token tells
/// whether the copy is still current; every write sets a new token in the same atomic step, so nothing stale is served.
/// Secrets (the dispatch and notification webhook secrets, the SMTP password) are stored and read back encrypted
/// (<see cref="TenantSecrets"/>): settings carry them in that form, and only the call that sends with one decrypts it.
/// </summary>
public sealed class TenantStore(RedisConnection redis, TenantSecrets secrets)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Rev, TenantSettings Settings)> _cache = new(StringComparer.Ordinal);

    private IDatabase Db => redis.Database;

    public async Task<IReadOnlyList<string>> ListAsync()
    {
        var members = await Db.SetMembersAsync(RedisKeys.Tenants);
        return [.. members.Select(m => (string)m!).Order(StringComparer.Ordinal)];
    }

    public async Task<bool> ExistsAsync(string tenant) =>
        TenantIds.IsValid(tenant) && await Db.SetContainsAsync(RedisKeys.Tenants, tenant);

    /// <summary>The tenant's settings: the cached copy while the stored revision is still its revision (one read), else read anew.</summary>
    public async Task<TenantSettings?> GetSettingsAsync(string tenant) =>
        await GetSettingsAsync(tenant, TenantIds.IsValid(tenant) && _cache.ContainsKey(tenant)
            ? (string?)await Db.HashGetAsync(RedisKeys.Settings(tenant), "rev")
            : null);

    /// <summary>
    /// The settings at revision <paramref name="rev"/>, read by the caller in the same round trip as what it acts on:
    /// the cached copy when it is that revision, else read anew.
    /// </summary>
    public async Task<TenantSettings?> GetSettingsAsync(string tenant, string? rev)
    {
        if (!TenantIds.IsValid(tenant))
        {
            return null;
        }
        if (rev is not null && _cache.TryGetValue(tenant, out var cached) && cached.Rev == rev)
        {
            return cached.Settings;
        }
        return await LoadSettingsAsync(tenant);
    }

    private async Task<TenantSettings?> LoadSettingsAsync(string tenant)
    {
        if (!await ExistsAsync(tenant))
        {
            return null;
        }
        var f = (await Db.HashGetAllAsync(RedisKeys.Settings(tenant))).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        var settings = Parse(tenant, f);
        if (f.GetValueOrDefault("rev") is { Length: > 0 } rev)
        {
            _cache[tenant] = (rev, settings);
        }
        else
        {
            // Settings written before revisions existed: give them one. HSETNX fails if a write (which always sets a
            // revision) came in between, and then this copy, possibly older, is not kept.
            var first = Guid.NewGuid().ToString("N");
            if (await Db.HashSetAsync(RedisKeys.Settings(tenant), "rev", first, When.NotExists))
            {
                _cache[tenant] = (first, settings);
            }
        }
        return settings;
    }

    private static TenantSettings Parse(string tenant, Dictionary<string, string?> f) =>
        new()
        {
            Tenant = tenant,
            DisplayName = f.GetValueOrDefault("displayName") is { Length: > 0 } name ? name : null,
            ApprovalTtl = long.TryParse(f.GetValueOrDefault("approvalTtlMs"), out var ms)
                ? TimeSpan.FromMilliseconds(ms)
                : TenantSettings.DefaultApprovalTtl,
            Approvers = SplitList(f.GetValueOrDefault("approvers")),
            Dispatch = f.GetValueOrDefault("dispatchKind") is { Length: > 0 } kind
                ? new DispatchSink(kind, f.GetValueOrDefault("dispatchTarget") ?? "", NullIfEmpty(f.GetValueOrDefault("dispatchSecret")))
                : null,
            Workflow = f.GetValueOrDefault("workflow") is { Length: > 0 } workflow
                ? System.Text.Json.JsonSerializer.Deserialize(workflow, Infrastructure.Json.AppJsonContext.Default.WorkflowSettings) ?? new()
                : new(),
            Redaction = f.GetValueOrDefault("redaction") is { Length: > 0 } redaction
                ? System.Text.Json.JsonSerializer.Deserialize(redaction, Infrastructure.Json.AppJsonContext.Default.RedactionSettings) ?? Features.Redaction.RedactionSettings.None
                : Features.Redaction.RedactionSettings.None,
            Slack = f.GetValueOrDefault("slack") is { Length: > 0 } slack
                ? System.Text.Json.JsonSerializer.Deserialize(slack, Infrastructure.Json.AppJsonContext.Default.SlackSettings)
                : null,
        };

    /// <summary>Registers a tenant with these settings unless it exists already (bootstrap and demo data).</summary>
    public async Task<bool> EnsureAsync(TenantSettings settings)
    {
        var added = await Db.SetAddAsync(RedisKeys.Tenants, settings.Tenant);
        if (added)
        {
            await Db.HashSetAsync(RedisKeys.Settings(settings.Tenant), [.. ToFields(settings).Select(f => new HashEntry(f.Key, f.Value))]);
        }
        return added;
    }

    /// <summary>Replaces the settings and records the audit entry in the same atomic step.</summary>
    public async Task UpdateAsync(TenantSettings settings, string auditJson)
    {
        var args = new List<RedisValue> { auditJson };
        foreach (var (name, value) in ToFields(settings))
        {
            args.Add(name);
            args.Add(value);
        }
        await Db.ScriptEvaluateAsync(LuaScripts.HashSetAudited,
            [RedisKeys.Settings(settings.Tenant), RedisKeys.AuditOutbox(settings.Tenant)], [.. args]);
    }

    private IEnumerable<KeyValuePair<string, string>> ToFields(TenantSettings s) =>
    [
        new("displayName", s.DisplayName ?? ""),
        new("approvalTtlMs", ((long)s.ApprovalTtl.TotalMilliseconds).ToString()),
        new("approvers", string.Join(',', s.Approvers)),
        new("dispatchKind", s.Dispatch?.Kind ?? ""),
        new("dispatchTarget", s.Dispatch?.Target ?? ""),
        new("dispatchSecret", secrets.SealIfPlain(s.Tenant, s.Dispatch?.Secret) ?? ""),
        new("workflow", WorkflowJson(s.Tenant, s.Workflow)),
        new("redaction", System.Text.Json.JsonSerializer.Serialize(s.Redaction, Infrastructure.Json.AppJsonContext.Default.RedactionSettings)),
        new("slack", SlackJson(s.Tenant, s.Slack)),
        // A new revision with every write: instances holding the previous copy read the settings again.
        new("rev", Guid.NewGuid().ToString("N")),
    ];

    /// <summary>The workflow as stored, its secrets encrypted (plain ones from an older version included).</summary>
    private string WorkflowJson(string tenant, WorkflowSettings w)
    {
        if (w.Notifications is { } n)
        {
            w = w with
            {
                Notifications = n with
                {
                    WebhookSecret = secrets.SealIfPlain(tenant, n.WebhookSecret),
                    Smtp = n.Smtp is { } smtp ? smtp with { Password = secrets.SealIfPlain(tenant, smtp.Password) } : null,
                },
            };
        }
        return System.Text.Json.JsonSerializer.Serialize(w, Infrastructure.Json.AppJsonContext.Default.WorkflowSettings);
    }

    /// <summary>Slack as stored: its webhook URL and signing secret encrypted; empty when Slack is off.</summary>
    private string SlackJson(string tenant, Slack.SlackSettings? slack) => slack is null ? "" :
        System.Text.Json.JsonSerializer.Serialize(slack with
        {
            WebhookUrl = secrets.SealIfPlain(tenant, slack.WebhookUrl),
            SigningSecret = secrets.SealIfPlain(tenant, slack.SigningSecret),
        }, Infrastructure.Json.AppJsonContext.Default.SlackSettings);

    /// <summary>
    /// Encrypts the secrets an older version stored in plain text (at start, <see cref="SecretsAtRestMigration"/>); true
    /// when it rewrote them. Only while the settings are unchanged: a write in between stored them encrypted already.
    /// </summary>
    public async Task<bool> SealPlainSecretsAsync(string tenant)
    {
        var key = RedisKeys.Settings(tenant);
        var f = (await Db.HashGetAllAsync(key)).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        var settings = Parse(tenant, f);
        var workflow = settings.Workflow.Notifications;
        if (TenantSecrets.IsSealed(settings.Dispatch?.Secret) && TenantSecrets.IsSealed(workflow?.WebhookSecret)
            && TenantSecrets.IsSealed(workflow?.Smtp?.Password))
        {
            return false;
        }
        var transaction = Db.CreateTransaction();
        transaction.AddCondition(f.GetValueOrDefault("rev") is { Length: > 0 } rev
            ? Condition.HashEqual(key, "rev", rev)
            : Condition.HashNotExists(key, "rev"));
        _ = transaction.HashSetAsync(key,
        [
            new HashEntry("dispatchSecret", secrets.SealIfPlain(tenant, settings.Dispatch?.Secret) ?? ""),
            new HashEntry("workflow", WorkflowJson(tenant, settings.Workflow)),
            new HashEntry("rev", Guid.NewGuid().ToString("N")),
        ]);
        return await transaction.ExecuteAsync();
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static IReadOnlyList<string> SplitList(string? value) =>
        string.IsNullOrEmpty(value) ? [] : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
