using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ReviewerPortal.Features.Policies;

/// <summary>
/// Parses and validates a policy document. Every problem is reported with its field path and the line and column
/// of the node at fault; unknown fields are errors, so a typo never silently changes what a policy decides.
/// </summary>
public static partial class PolicyParser
{
    public const int MaxBytes = 256 * 1024;
    public const int MaxRules = 1000;
    public const int MaxErrors = 100;
    private static readonly TimeSpan MinTtl = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan MaxTtl = TimeSpan.FromDays(30);
    private static readonly string[] TopLevel = ["version", "default", "rules"];
    private static readonly string[] RuleFields = ["id", "when", "decision", "rate", "ttl", "on_timeout", "stepUp", "until"];
    private static readonly string[] WhenFields = ["topic", "env", "channel"];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    private static partial Regex RuleId();

    [GeneratedRegex("^payload(\\.[A-Za-z0-9_$-]+)+$")]
    private static partial Regex PayloadPath();

    [GeneratedRegex("^([0-9]{1,9})/(second|minute|hour|day|[0-9]{1,9}[smhd])$")]
    private static partial Regex Rate();

    public static PolicyParseResult Parse(string yaml)
    {
        var errors = new List<PolicyError>();
        if (yaml.Length > MaxBytes)
        {
            return Fail(new PolicyError("", $"A policy is at most {MaxBytes / 1024} KiB.", 1, 1));
        }
        var stream = new YamlStream();
        try
        {
            // Anchors and aliases let a few KB expand into millions of nodes (and errors): a policy has no use for them.
            var scan = new Parser(new StringReader(yaml));
            while (scan.MoveNext())
            {
                if (scan.Current is YamlDotNet.Core.Events.AnchorAlias or YamlDotNet.Core.Events.NodeEvent { Anchor.IsEmpty: false })
                {
                    return Fail(new PolicyError("", "YAML anchors and aliases (&name, *name) are not accepted in a policy; write each rule out.",
                        (int)scan.Current.Start.Line, (int)scan.Current.Start.Column));
                }
            }
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException ex)
        {
            var message = ex.InnerException?.Message ?? ex.Message;
            var colon = message.IndexOf("): ", StringComparison.Ordinal);
            return Fail(new PolicyError("", colon > 0 ? message[(colon + 3)..] : message, (int)ex.Start.Line, (int)ex.Start.Column));
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            var node = stream.Documents.Count > 0 ? stream.Documents[0].RootNode : null;
            return Fail(new PolicyError("", "A policy is one YAML mapping with version, rules and optionally default.",
                Line(node), Column(node)));
        }

        CheckKeys(root, TopLevel, "", errors);
        var version = Scalar(root, "version", "version", errors, required: true);
        if (version is not null && version.Value != "v1")
        {
            errors.Add(At(version, "version", $"Unsupported version '{version.Value}'; this server reads v1."));
        }
        var @default = PolicyDecision.RequireHuman;
        var defaultNode = Scalar(root, "default", "default", errors, required: false);
        if (defaultNode is not null && (!PolicyDecisionText.TryParse(defaultNode.Value, out @default) || @default == PolicyDecision.Throttle))
        {
            errors.Add(At(defaultNode, "default", "One of allow, deny, require_human."));
        }

        var rules = new List<PolicyRule>();
        if (!root.Children.TryGetValue(new YamlScalarNode("rules"), out var rulesNode))
        {
            errors.Add(new PolicyError("rules", "Required (a list, possibly empty).", Line(root), Column(root)));
        }
        else if (rulesNode is YamlScalarNode { Value: null or "" or "~" or "null" })
        {
            // "rules:" with nothing after it: an empty list.
        }
        else if (rulesNode is not YamlSequenceNode sequence)
        {
            errors.Add(At(rulesNode, "rules", "Must be a list of rules."));
        }
        else if (sequence.Children.Count > MaxRules)
        {
            errors.Add(At(sequence, "rules", $"At most {MaxRules} rules."));
        }
        else
        {
            var ids = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < sequence.Children.Count; i++)
            {
                if (ParseRule(sequence.Children[i], $"rules[{i}]", errors) is { } rule)
                {
                    if (!ids.Add(rule.Id))
                    {
                        errors.Add(At(((YamlMappingNode)sequence.Children[i]).Children[new YamlScalarNode("id")], $"rules[{i}].id",
                            $"Duplicate rule id '{rule.Id}'."));
                    }
                    rules.Add(rule);
                }
            }
        }

        return errors.Count > 0
            ? new PolicyParseResult(null, Capped(errors))
            : new PolicyParseResult(new PolicyDocument(version!.Value!, @default, rules), []);
    }

    /// <summary>The first <see cref="MaxErrors"/> errors and a count of the rest: the answer stays small whatever the input.</summary>
    private static List<PolicyError> Capped(List<PolicyError> errors) => errors.Count <= MaxErrors
        ? errors
        : [.. errors.Take(MaxErrors), new PolicyError("", $"…and {errors.Count - MaxErrors} more errors.", errors[MaxErrors].Line, errors[MaxErrors].Column)];

    private static PolicyRule? ParseRule(YamlNode node, string path, List<PolicyError> errors)
    {
        if (node is not YamlMappingNode map)
        {
            errors.Add(At(node, path, "A rule is a mapping with id, when and decision."));
            return null;
        }
        var before = errors.Count;
        CheckKeys(map, RuleFields, path + ".", errors);
        var id = Scalar(map, "id", path + ".id", errors, required: true);
        if (id is not null && !RuleId().IsMatch(id.Value ?? ""))
        {
            errors.Add(At(id, path + ".id", "Letters, digits, '.', '_' and '-', starting with a letter or digit, at most 100."));
        }

        var when = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map.Children.TryGetValue(new YamlScalarNode("when"), out var whenNode))
        {
            if (whenNode is YamlMappingNode whenMap)
            {
                foreach (var (keyNode, valueNode) in whenMap.Children)
                {
                    var key = (keyNode as YamlScalarNode)?.Value ?? "";
                    var field = $"{path}.when.{key}";
                    if (!WhenFields.Contains(key) && !PayloadPath().IsMatch(key))
                    {
                        errors.Add(At(keyNode, field, "Unknown field; 'when' matches topic, env, channel or payload.<path>."));
                    }
                    else if (valueNode is not YamlScalarNode { Value: { Length: > 0 } value })
                    {
                        errors.Add(At(valueNode, field, "A non-empty value or pattern ('*' matches anything)."));
                    }
                    else
                    {
                        when[key] = value;
                    }
                }
            }
            else if (whenNode is not YamlScalarNode { Value: null or "" })
            {
                errors.Add(At(whenNode, path + ".when", "A mapping of field: pattern."));
            }
        }

        var decision = PolicyDecision.RequireHuman;
        var decisionNode = Scalar(map, "decision", path + ".decision", errors, required: true);
        if (decisionNode is not null && !PolicyDecisionText.TryParse(decisionNode.Value, out decision))
        {
            errors.Add(At(decisionNode, path + ".decision", "One of allow, deny, throttle, require_human."));
        }

        ThrottleRate? rate = null;
        var rateNode = Scalar(map, "rate", path + ".rate", errors, required: false);
        if (rateNode is not null)
        {
            if (decision != PolicyDecision.Throttle)
            {
                errors.Add(At(rateNode, path + ".rate", "Only a throttle rule has a rate."));
            }
            else if (ParseRate(rateNode.Value) is { } parsed)
            {
                rate = parsed;
            }
            else
            {
                errors.Add(At(rateNode, path + ".rate", "N/second, N/minute, N/hour, N/day or N/<duration> (e.g. 5/minute, 100/15m), N ≥ 1."));
            }
        }
        else if (decisionNode is not null && decision == PolicyDecision.Throttle)
        {
            errors.Add(At(decisionNode, path + ".rate", "A throttle rule needs a rate (e.g. rate: 5/minute)."));
        }

        TimeSpan? ttl = null;
        var ttlNode = Scalar(map, "ttl", path + ".ttl", errors, required: false);
        if (ttlNode is not null)
        {
            if (decision != PolicyDecision.RequireHuman)
            {
                errors.Add(At(ttlNode, path + ".ttl", "Only a require_human rule has a ttl."));
            }
            else if (!DurationText.TryParse(ttlNode.Value, out var parsed) || parsed < MinTtl || parsed > MaxTtl)
            {
                errors.Add(At(ttlNode, path + ".ttl", DurationText.Problem(ttlNode.Value, MinTtl, MaxTtl)));
            }
            else
            {
                ttl = parsed;
            }
        }

        string? onTimeout = null;
        var timeoutNode = Scalar(map, "on_timeout", path + ".on_timeout", errors, required: false);
        if (timeoutNode is not null)
        {
            if (decision != PolicyDecision.RequireHuman)
            {
                errors.Add(At(timeoutNode, path + ".on_timeout", "Only a require_human rule has an on_timeout outcome."));
            }
            else if (!TimeoutOutcomes.IsKnown(timeoutNode.Value))
            {
                errors.Add(At(timeoutNode, path + ".on_timeout", "One of reject, approve, escalate."));
            }
            else
            {
                onTimeout = timeoutNode.Value;
            }
        }

        var stepUp = false;
        var stepUpNode = Scalar(map, "stepUp", path + ".stepUp", errors, required: false);
        if (stepUpNode is not null)
        {
            if (decision != PolicyDecision.RequireHuman)
            {
                errors.Add(At(stepUpNode, path + ".stepUp", "Only a require_human rule can require sign-in (stepUp)."));
            }
            else if (stepUpNode.Value is not ("true" or "false"))
            {
                errors.Add(At(stepUpNode, path + ".stepUp", "true or false."));
            }
            else
            {
                stepUp = stepUpNode.Value == "true";
            }
        }

        DateTimeOffset? until = null;
        var untilNode = Scalar(map, "until", path + ".until", errors, required: false);
        if (untilNode is not null)
        {
            if (decision != PolicyDecision.Allow)
            {
                errors.Add(At(untilNode, path + ".until", "Only an allow rule (a standing approval) has an until."));
            }
            else if (!DateTimeOffset.TryParse(untilNode.Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal,
                         out var end) || !untilNode.Value!.Contains('T'))
            {
                errors.Add(At(untilNode, path + ".until", "An ISO 8601 instant, e.g. 2026-11-02T17:00:00Z."));
            }
            else
            {
                // Kept to the second, as written in the canonical form.
                until = new DateTimeOffset(end.UtcTicks - end.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
            }
        }

        return errors.Count > before || id is null ? null : new PolicyRule(id.Value!, when, decision, rate, ttl, onTimeout, stepUp, until);
    }

    private static ThrottleRate? ParseRate(string? text)
    {
        var match = Rate().Match(text ?? "");
        if (!match.Success || !int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) || limit < 1)
        {
            return null;
        }
        TimeSpan window;
        switch (match.Groups[2].Value)
        {
            case "second": window = TimeSpan.FromSeconds(1); break;
            case "minute": window = TimeSpan.FromMinutes(1); break;
            case "hour": window = TimeSpan.FromHours(1); break;
            case "day": window = TimeSpan.FromDays(1); break;
            default:
                if (!DurationText.TryParse(match.Groups[2].Value, out window) || window < TimeSpan.FromSeconds(1) || window > TimeSpan.FromDays(1))
                {
                    return null;
                }
                break;
        }
        return new ThrottleRate(limit, window);
    }

    private static void CheckKeys(YamlMappingNode map, string[] allowed, string prefix, List<PolicyError> errors)
    {
        foreach (var key in map.Children.Keys)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (!allowed.Contains(name))
            {
                errors.Add(At(key, prefix + name, $"Unknown field '{name}'; expected {string.Join(", ", allowed)}."));
            }
        }
    }

    private static YamlScalarNode? Scalar(YamlMappingNode map, string key, string field, List<PolicyError> errors, bool required)
    {
        if (!map.Children.TryGetValue(new YamlScalarNode(key), out var node))
        {
            if (required)
            {
                errors.Add(new PolicyError(field, "Required.", Line(map), Column(map)));
            }
            return null;
        }
        if (node is not YamlScalarNode { Value.Length: > 0 } scalar)
        {
            errors.Add(At(node, field, "Must be a single value."));
            return null;
        }
        return scalar;
    }

    private static PolicyError At(YamlNode node, string field, string message) => new(field, message, Line(node), Column(node));

    private static int Line(YamlNode? node) => node is null ? 1 : (int)node.Start.Line;

    private static int Column(YamlNode? node) => node is null ? 1 : (int)node.Start.Column;

    private static PolicyParseResult Fail(PolicyError error) => new(null, [error]);
}
