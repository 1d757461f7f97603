using System.Text.Json;

namespace ReviewerPortal.Features.Policies;

/// <summary>The facts of a job a policy looks at.</summary>
public sealed record JobFacts(string Topic, string Env, string? Channel, JsonElement Payload);

/// <summary>What the policy decided, which rule did (null: the default), and that rule's rate or TTL; <see cref="Until"/> when a standing approval allowed it.</summary>
public sealed record PolicyEvaluation(PolicyDecision Decision, string? RuleId, ThrottleRate? Rate, TimeSpan? Ttl, string? OnTimeout = null,
    DateTimeOffset? Until = null);

/// <summary>
/// First matching rule wins; no match falls to the document's default. Rules with <c>until</c> (standing approvals) are
/// set aside: when the rest decides <c>require_human</c>, the first standing rule that matches and whose <c>until</c> is
/// still ahead of <paramref name="now"/> (the caller's clock) allows the job instead. A standing rule therefore never
/// overrides a deny or a throttle, and stops counting at its end even while it is still written in the policy; without
/// a clock none counts. Pure and allocation-light.
/// </summary>
public static class PolicyEvaluator
{
    public static PolicyEvaluation Evaluate(PolicyDocument policy, JobFacts job, DateTimeOffset? now = null)
    {
        var decided = new PolicyEvaluation(policy.Default, null, null, null);
        foreach (var rule in policy.Rules)
        {
            if (rule.Until is null && Matches(rule, job))
            {
                decided = new PolicyEvaluation(rule.Decision, rule.Id, rule.Rate, rule.Ttl, rule.OnTimeout);
                break;
            }
        }
        if (decided.Decision != PolicyDecision.RequireHuman || now is not { } at)
        {
            return decided;
        }
        foreach (var rule in policy.Rules)
        {
            if (rule.Until is { } until && at < until && Matches(rule, job))
            {
                return new PolicyEvaluation(rule.Decision, rule.Id, null, null, Until: until);
            }
        }
        return decided;
    }

    public static bool Matches(PolicyRule rule, JobFacts job)
    {
        foreach (var (field, pattern) in rule.When)
        {
            var value = ValueOf(field, job);
            if (value is null || !Glob(pattern, value))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The job's text for a <c>when</c> field; null when the job has none (which no pattern matches).</summary>
    internal static string? ValueOf(string field, JobFacts job)
    {
        switch (field)
        {
            case "topic": return job.Topic;
            case "env": return job.Env;
            case "channel": return job.Channel;
        }
        if (!field.StartsWith("payload.", StringComparison.Ordinal) || job.Payload.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var current = job.Payload;
        foreach (var segment in field["payload.".Length..].Split('.'))
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(segment, out current))
            {
                return null;
            }
        }
        return current.ValueKind switch
        {
            JsonValueKind.String => current.GetString(),
            JsonValueKind.Number => current.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => null,
        };
    }

    /// <summary>Case-sensitive match where <c>*</c> stands for any run of characters (also none).</summary>
    public static bool Glob(string pattern, string value)
    {
        int p = 0, v = 0, star = -1, mark = 0;
        while (v < value.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                star = p++;
                mark = v;
            }
            else if (p < pattern.Length && pattern[p] == value[v])
            {
                p++;
                v++;
            }
            else if (star >= 0)
            {
                p = star + 1;
                v = ++mark;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }
}
