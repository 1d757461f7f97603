using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ReviewerPortal.Features.Policies;

/// <summary>What a matching rule decides. YAML: <c>allow</c>, <c>deny</c>, <c>throttle</c>, <c>require_human</c>.</summary>
public enum PolicyDecision { Allow, Deny, Throttle, RequireHuman }

public static class PolicyDecisionText
{
    public static string ToYaml(this PolicyDecision decision) => decision switch
    {
        PolicyDecision.Allow => "allow",
        PolicyDecision.Deny => "deny",
        PolicyDecision.Throttle => "throttle",
        _ => "require_human",
    };

    public static bool TryParse(string? text, out PolicyDecision decision)
    {
        (var ok, decision) = text switch
        {
            "allow" => (true, PolicyDecision.Allow),
            "deny" => (true, PolicyDecision.Deny),
            "throttle" => (true, PolicyDecision.Throttle),
            "require_human" => (true, PolicyDecision.RequireHuman),
            _ => (false, PolicyDecision.RequireHuman),
        };
        return ok;
    }
}

/// <summary>At most <see cref="Limit"/> matching jobs per <see cref="Window"/> for the tenant.</summary>
public sealed record ThrottleRate(int Limit, TimeSpan Window)
{
    public override string ToString() =>
        Window == TimeSpan.FromSeconds(1) ? $"{Limit}/second"
        : Window == TimeSpan.FromMinutes(1) ? $"{Limit}/minute"
        : Window == TimeSpan.FromHours(1) ? $"{Limit}/hour"
        : Window == TimeSpan.FromDays(1) ? $"{Limit}/day"
        : $"{Limit}/{DurationText.Format(Window)}";
}

/// <summary>One rule: when every <see cref="When"/> pattern matches the job, <see cref="Decision"/> applies.</summary>
/// <remarks>
/// <see cref="OnTimeout"/> (YAML <c>on_timeout</c>) overrides the tenant's timeout outcome for this rule's approvals.
/// <see cref="StepUp"/> (YAML <c>stepUp: true</c>) makes its approvals decidable only by a signed-in reviewer: the
/// notifications' action links open the portal instead of deciding.
/// <see cref="Until"/> (YAML <c>until</c>, allow rules only) makes it a standing approval: honoured only before that
/// instant, and only where the job would otherwise wait for a human (see <see cref="PolicyEvaluator"/>).
/// </remarks>
public sealed record PolicyRule(string Id, IReadOnlyDictionary<string, string> When, PolicyDecision Decision, ThrottleRate? Rate, TimeSpan? Ttl,
    string? OnTimeout = null, bool StepUp = false, DateTimeOffset? Until = null)
{
    /// <summary>The rule's canonical YAML (as it stands in the document's canonical form, without the list dash).</summary>
    public string CanonicalYaml { get; } = Canonical(Id, When, Decision, Rate, Ttl, OnTimeout, StepUp, Until);

    /// <summary>How <c>until</c> is written: UTC to the second (<c>2026-11-02T17:00:00Z</c>).</summary>
    public static string FormatUntil(DateTimeOffset until) =>
        until.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private static string Canonical(string id, IReadOnlyDictionary<string, string> when, PolicyDecision decision, ThrottleRate? rate, TimeSpan? ttl,
        string? onTimeout, bool stepUp, DateTimeOffset? until)
    {
        var b = new StringBuilder();
        b.Append("id: ").Append(id).Append('\n');
        if (when.Count > 0)
        {
            b.Append("when:\n");
            foreach (var (key, value) in when.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                b.Append("  ").Append(key).Append(": ").Append(Quote(value)).Append('\n');
            }
        }
        b.Append("decision: ").Append(decision.ToYaml()).Append('\n');
        if (rate is not null)
        {
            b.Append("rate: ").Append(rate).Append('\n');
        }
        if (ttl is not null)
        {
            b.Append("ttl: ").Append(DurationText.Format(ttl.Value)).Append('\n');
        }
        if (onTimeout is not null)
        {
            b.Append("on_timeout: ").Append(onTimeout).Append('\n');
        }
        if (stepUp)
        {
            // Only when set, so every policy written before keeps its snapshot.
            b.Append("stepUp: true\n");
        }
        if (until is { } end)
        {
            b.Append("until: ").Append(FormatUntil(end)).Append('\n');
        }
        return b.ToString();
    }

    /// <summary>A JSON string literal is a valid YAML double-quoted scalar.</summary>
    internal static string Quote(string value) => JsonSerializer.Serialize(value);
}

/// <summary>
/// A parsed, valid policy. <see cref="Snapshot"/> is the SHA-256 of <see cref="CanonicalYaml"/>: comments, white
/// space and the order of keys inside mappings do not change it; any change of meaning (or of rule order) does.
/// </summary>
public sealed class PolicyDocument
{
    public PolicyDocument(string version, PolicyDecision @default, IReadOnlyList<PolicyRule> rules)
    {
        Version = version;
        Default = @default;
        Rules = rules;
        var b = new StringBuilder();
        b.Append("version: ").Append(version).Append('\n');
        b.Append("default: ").Append(@default.ToYaml()).Append('\n');
        if (rules.Count == 0)
        {
            b.Append("rules: []\n");
        }
        else
        {
            b.Append("rules:\n");
            foreach (var rule in rules)
            {
                var lines = rule.CanonicalYaml.TrimEnd('\n').Split('\n');
                b.Append("  - ").Append(lines[0]).Append('\n');
                foreach (var line in lines.Skip(1))
                {
                    b.Append("    ").Append(line).Append('\n');
                }
            }
        }
        CanonicalYaml = b.ToString();
        Snapshot = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalYaml)));
    }

    public string Version { get; }
    public PolicyDecision Default { get; }
    public IReadOnlyList<PolicyRule> Rules { get; }
    public string CanonicalYaml { get; }
    public string Snapshot { get; }
}

/// <summary>What happens to an approval when its SLA and every escalation level ran out without a decision.</summary>
public static class TimeoutOutcomes
{
    public const string Reject = "reject";
    public const string Approve = "approve";
    public const string Escalate = "escalate";

    public static readonly IReadOnlyList<string> All = [Reject, Approve, Escalate];

    public static bool IsKnown(string? value) => value is not null && All.Contains(value);
}

public sealed record PolicyError(string Field, string Message, int Line, int Column);

public sealed record PolicyParseResult(PolicyDocument? Document, IReadOnlyList<PolicyError> Errors)
{
    public bool IsValid => Document is not null;
}
