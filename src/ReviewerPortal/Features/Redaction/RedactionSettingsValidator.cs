using System.Text.RegularExpressions;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Redaction;

/// <summary>Turns the request's <c>redactFields</c> and <c>redactPatterns</c> into settings, naming every field at fault.</summary>
public static partial class RedactionSettingsValidator
{
    [GeneratedRegex(@"^[A-Za-z0-9_$@\-]{1,100}(\.[A-Za-z0-9_$@\-]{1,100}){0,9}$")]
    private static partial Regex FieldPath();

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,39}$")]
    private static partial Regex PatternName();

    public static RedactionSettings Apply(RedactionSettings current, TenantSettingsRequest request, Redactor redactor,
        Dictionary<string, string[]> errors)
    {
        var updated = current;
        if (request.RedactFields is { } fields)
        {
            if (fields.Count > RedactionSettings.MaxFields)
            {
                errors["redactFields"] = [$"At most {RedactionSettings.MaxFields} paths."];
            }
            else
            {
                var ok = true;
                for (var i = 0; i < fields.Count; i++)
                {
                    if (fields[i] is null || !FieldPath().IsMatch(fields[i]))
                    {
                        errors[$"redactFields[{i}]"] = ["A payload path: names of letters, digits, '_', '-', '$', '@', joined by dots (card.number), up to 10 deep."];
                        ok = false;
                    }
                }
                if (ok)
                {
                    updated = updated with { Fields = [.. fields.Distinct(StringComparer.OrdinalIgnoreCase)] };
                }
            }
        }
        if (request.RedactPatterns is { } patterns)
        {
            if (patterns.Count > RedactionSettings.MaxPatterns)
            {
                errors["redactPatterns"] = [$"At most {RedactionSettings.MaxPatterns} patterns."];
                return updated;
            }
            var ok = true;
            var names = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < patterns.Count; i++)
            {
                var (name, regex) = (patterns[i]?.Name, patterns[i]?.Regex);
                if (name is null || !PatternName().IsMatch(name))
                {
                    errors[$"redactPatterns[{i}].name"] = ["Lowercase letters, digits, '_' or '-', up to 40; it names the kind in [redacted:name]."];
                    ok = false;
                }
                else if (!names.Add(name))
                {
                    errors[$"redactPatterns[{i}].name"] = [$"'{name}' is named twice."];
                    ok = false;
                }
                if (string.IsNullOrEmpty(regex) || regex.Length > RedactionSettings.MaxRegexLength)
                {
                    errors[$"redactPatterns[{i}].regex"] = [$"A regular expression of 1 to {RedactionSettings.MaxRegexLength} characters."];
                    ok = false;
                }
                else if (redactor.Check(regex) is { } problem)
                {
                    errors[$"redactPatterns[{i}].regex"] = [problem];
                    ok = false;
                }
            }
            if (ok)
            {
                updated = updated with { Patterns = [.. patterns.Select(p => new RedactPattern(p.Name!, p.Regex!))] };
            }
        }
        return updated;
    }

    /// <summary>The change for the audit entry: paths and pattern names, never a pattern's text (it may quote a secret's shape).</summary>
    public static string? Describe(RedactionSettings before, RedactionSettings after) =>
        before == after
            ? null
            : $"redactFields [{string.Join(',', before.Fields)}] → [{string.Join(',', after.Fields)}]; " +
              $"redactPatterns [{string.Join(',', before.Patterns.Select(p => p.Name))}] → [{string.Join(',', after.Patterns.Select(p => p.Name))}]";
}
