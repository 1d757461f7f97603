namespace ReviewerPortal.Features.Policies;

public enum RuleChange { Unchanged, Added, Removed, Changed, Moved }

public enum DiffKind { Same, Added, Removed }

public sealed record DiffLine(DiffKind Kind, string Text);

/// <summary>One rule (or the pseudo rule <c>(default)</c>) compared between two policy versions.</summary>
public sealed record RuleDiff(string RuleId, RuleChange Change, string? BeforeYaml, string? AfterYaml, IReadOnlyList<DiffLine> Lines);

/// <summary>Rule-by-rule comparison of two versions, in the order of the newer one, removed rules last.</summary>
public static class PolicyDiff
{
    public const string DefaultRuleId = "(default)";

    public static IReadOnlyList<RuleDiff> Compare(PolicyDocument? before, PolicyDocument after)
    {
        var result = new List<RuleDiff>();
        var old = (before?.Rules ?? []).Select((r, i) => (r, i)).ToDictionary(x => x.r.Id, StringComparer.Ordinal);
        for (var i = 0; i < after.Rules.Count; i++)
        {
            var rule = after.Rules[i];
            if (!old.TryGetValue(rule.Id, out var previous))
            {
                result.Add(new RuleDiff(rule.Id, RuleChange.Added, null, rule.CanonicalYaml, Lines(null, rule.CanonicalYaml)));
                continue;
            }
            var change = previous.r.CanonicalYaml != rule.CanonicalYaml ? RuleChange.Changed
                : RelativeOrder(before!, after, rule.Id) ? RuleChange.Unchanged : RuleChange.Moved;
            result.Add(new RuleDiff(rule.Id, change, previous.r.CanonicalYaml, rule.CanonicalYaml, Lines(previous.r.CanonicalYaml, rule.CanonicalYaml)));
        }
        var kept = after.Rules.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var rule in before?.Rules ?? [])
        {
            if (!kept.Contains(rule.Id))
            {
                result.Add(new RuleDiff(rule.Id, RuleChange.Removed, rule.CanonicalYaml, null, Lines(rule.CanonicalYaml, null)));
            }
        }
        var beforeDefault = before is null ? null : $"default: {before.Default.ToYaml()}\n";
        var afterDefault = $"default: {after.Default.ToYaml()}\n";
        result.Add(new RuleDiff(DefaultRuleId,
            beforeDefault is null ? RuleChange.Added : beforeDefault == afterDefault ? RuleChange.Unchanged : RuleChange.Changed,
            beforeDefault, afterDefault, Lines(beforeDefault, afterDefault)));
        return result;
    }

    /// <summary>True when the rule keeps its position relative to the rules both versions share.</summary>
    private static bool RelativeOrder(PolicyDocument before, PolicyDocument after, string id)
    {
        var shared = after.Rules.Select(r => r.Id).Intersect(before.Rules.Select(r => r.Id), StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal);
        var oldOrder = before.Rules.Where(r => shared.Contains(r.Id)).Select(r => r.Id).ToList();
        var newOrder = after.Rules.Where(r => shared.Contains(r.Id)).Select(r => r.Id).ToList();
        return oldOrder.IndexOf(id) == newOrder.IndexOf(id);
    }

    /// <summary>Line diff by longest common subsequence.</summary>
    public static IReadOnlyList<DiffLine> Lines(string? before, string? after)
    {
        var a = before?.TrimEnd('\n').Split('\n') ?? [];
        var b = after?.TrimEnd('\n').Split('\n') ?? [];
        var lcs = new int[a.Length + 1, b.Length + 1];
        for (var i = a.Length - 1; i >= 0; i--)
        {
            for (var j = b.Length - 1; j >= 0; j--)
            {
                lcs[i, j] = a[i] == b[j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
            }
        }
        var lines = new List<DiffLine>();
        int x = 0, y = 0;
        while (x < a.Length || y < b.Length)
        {
            if (x < a.Length && y < b.Length && a[x] == b[y])
            {
                lines.Add(new DiffLine(DiffKind.Same, a[x++]));
                y++;
            }
            else if (x < a.Length && (y == b.Length || lcs[x + 1, y] >= lcs[x, y + 1]))
            {
                lines.Add(new DiffLine(DiffKind.Removed, a[x++])); // removals before additions, as diff tools show them
            }
            else
            {
                lines.Add(new DiffLine(DiffKind.Added, b[y++]));
            }
        }
        return lines;
    }
}
