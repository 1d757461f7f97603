using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Features.Redaction;

/// <summary>What a scan did: the text as it may be stored, and how many secrets of each kind it replaced.</summary>
public sealed record RedactionResult(string Text, IReadOnlyDictionary<string, int> Kinds)
{
    public bool Redacted => Kinds.Count > 0;
}

/// <summary>
/// Scans free text that people and agents write (reasons, notes, change requests, case decisions) before it is
/// stored, audited or notified. Each secret becomes <c>[redacted:kind]</c> and the rest of the text stays:
/// <c>bearer</c> (the token after <c>Bearer</c>), <c>api_key</c> (<c>sk-…</c>, <c>pk-…</c>, <c>sk_live_…</c>,
/// <c>ghp_…</c>, <c>xoxb-…</c>, <c>AKIA…</c>), <c>credential</c> (the value of <c>password=</c>, <c>apikey:</c>,
/// <c>"secret": "…"</c>, <c>token=</c> and the like), <c>private_key</c> (a PEM private-key block), then the tenant's
/// own patterns (the marker names the pattern). Every pattern runs with <see cref="RedactionOptions.MatchTimeout"/>;
/// a text that cannot be scanned in time is replaced whole by <c>[redacted:unscanned]</c>. Each redaction is counted
/// (<see cref="Counters"/>, <c>redactions_{kind}</c>); the log names kinds and counts, never the text.
/// </summary>
public sealed partial class Redactor(IOptions<RedactionOptions> options, Counters counters, ILogger<Redactor> logger)
{
    public const string Bearer = "bearer";
    public const string ApiKey = "api_key";
    public const string Credential = "credential";
    public const string PrivateKey = "private_key";
    public const string Unscanned = "unscanned";

    /// <summary>The counter every tenant pattern adds to (pattern names are the tenant's: not a metric label).</summary>
    public const string Custom = "custom";

    /// <summary>The longest reason or note the API accepts (and the audit history's column holds).</summary>
    public const int MaxTextLength = 2000;

    public static string Marker(string kind) => $"[redacted:{kind}]";

    private const string NotMarker = @"(?!\[redacted:)";

    /// <summary>
    /// The built-in kinds, in the order they run (a private key first, so its body is not taken for other kinds).
    /// Source-generated, linear in practice (bounded repetitions), with a fixed generous timeout of their own.
    /// </summary>
    private static readonly (string Kind, Regex Regex)[] BuiltIns =
        [(PrivateKey, PrivateKeyPattern()), (Bearer, BearerPattern()), (ApiKey, ApiKeyPattern()), (Credential, CredentialPattern())];

    private const int BuiltInTimeoutMs = 2000;

    [GeneratedRegex(@"(?<s>-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY-----[\s\S]*?(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY-----|\z))",
        RegexOptions.CultureInvariant, BuiltInTimeoutMs)]
    private static partial Regex PrivateKeyPattern();

    [GeneratedRegex(@"\bBearer\s{1,10}" + NotMarker + @"(?<s>[A-Za-z0-9\-._~+/]{8,}=*)",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, BuiltInTimeoutMs)]
    private static partial Regex BearerPattern();

    [GeneratedRegex(@"\b(?<s>(?:sk|pk|rk)[-_](?:(?:live|test|proj|ant|svcacct)[-_])?[A-Za-z0-9][A-Za-z0-9_\-]{15,}"
                    + @"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16})\b",
        RegexOptions.CultureInvariant, BuiltInTimeoutMs)]
    private static partial Regex ApiKeyPattern();

    [GeneratedRegex(@"\b[A-Za-z0-9_\-]{0,40}?(?:password|passwd|pwd|passphrase|secret|token|apikey|api_key|api-key|access_key|private_key)(?:[_\-]?key)?"
                    + @"[""']?\s{0,10}[:=]\s{0,10}"
                    + @"(?:""" + NotMarker + @"(?<s>[^""\r\n]{1,500})""|'" + NotMarker + @"(?<s>[^'\r\n]{1,500})'|" + NotMarker + @"(?<s>[^\s""',;&}\]]{1,500}))",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, BuiltInTimeoutMs)]
    private static partial Regex CredentialPattern();

    private readonly ConcurrentDictionary<string, Regex> _tenantPatterns = new(StringComparer.Ordinal);

    /// <summary>The problem with a tenant pattern, or null when it may be saved.</summary>
    public string? Check(string regex)
    {
        Regex compiled;
        try
        {
            compiled = new Regex(regex, RegexOptions.CultureInvariant, options.Value.MatchTimeout);
        }
        catch (ArgumentException ex)
        {
            return $"Not a valid .NET regular expression: {ex.Message}";
        }
        try
        {
            if (compiled.IsMatch(""))
            {
                return "Matches the empty text; a pattern must match the secret itself.";
            }
        }
        catch (RegexMatchTimeoutException)
        {
            return "Too slow to evaluate.";
        }
        return null;
    }

    /// <summary>Scans <paramref name="text"/> with the built-in kinds and the tenant's patterns (no counting, no logging).</summary>
    public RedactionResult Scan(string text, RedactionSettings settings)
    {
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        var current = text;
        string? rule = null;
        try
        {
            foreach (var (kind, regex) in BuiltIns)
            {
                rule = kind;
                current = Replace(regex, current, kind, kinds);
            }
            foreach (var pattern in settings.Patterns)
            {
                rule = pattern.Name;
                current = Replace(TenantRegex(pattern.Regex), current, pattern.Name, kinds);
            }
        }
        catch (RegexMatchTimeoutException)
        {
            logger.LogWarning("Redaction pattern {Pattern} ran out of time on a text of {Length} characters; the text is replaced whole",
                rule, text.Length);
            return new RedactionResult(Marker(Unscanned), new Dictionary<string, int> { [Unscanned] = 1 });
        }
        catch (ArgumentException)
        {
            // A stored pattern that no longer compiles (it was checked at save): fail closed as for a timeout.
            logger.LogWarning("Redaction pattern {Pattern} does not compile; the text is replaced whole", rule);
            return new RedactionResult(Marker(Unscanned), new Dictionary<string, int> { [Unscanned] = 1 });
        }
        return new RedactionResult(current, kinds);
    }

    /// <summary>
    /// The text as it may be stored, audited and notified; each redaction counted for the tenant by kind. Null stays null.
    /// </summary>
    public async Task<string?> RedactAsync(string tenant, RedactionSettings settings, string? text, string field)
    {
        if (string.IsNullOrEmpty(text))
        {
            return text;
        }
        var result = Scan(text, settings);
        if (!result.Redacted)
        {
            return text;
        }
        foreach (var (kind, count) in result.Kinds)
        {
            var counter = CounterOf(kind, settings);
            for (var i = 0; i < count; i++)
            {
                await counters.IncrementAsync(tenant, counter);
            }
        }
        logger.LogInformation("Redacted {Kinds} in the {Field} written for tenant {Tenant}", Describe(result.Kinds), field, tenant);
        // A marker may be longer than the secret it replaces: the text never grows past what the API let in (2000).
        var limit = Math.Max(text.Length, MaxTextLength);
        return result.Text.Length <= limit ? result.Text : result.Text[..(limit - 1)] + "…";
    }

    /// <summary>The counter of a kind: <c>redactions_{kind}</c> for the built-in kinds, <c>redactions_custom</c> for the tenant's.</summary>
    public static string CounterOf(string kind, RedactionSettings settings) => kind switch
    {
        Bearer => Counters.RedactionsBearer,
        ApiKey => Counters.RedactionsApiKey,
        Credential => Counters.RedactionsCredential,
        PrivateKey => Counters.RedactionsPrivateKey,
        Unscanned => Counters.RedactionsUnscanned,
        _ => Counters.RedactionsCustom,
    };

    private static string Describe(IReadOnlyDictionary<string, int> kinds) =>
        string.Join(", ", kinds.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Value} {k.Key}"));

    private Regex TenantRegex(string pattern)
    {
        if (_tenantPatterns.Count > 2000)
        {
            _tenantPatterns.Clear(); // patterns replaced over time: never let the cache grow without bound
        }
        return _tenantPatterns.GetOrAdd(pattern, p => new Regex(p, RegexOptions.CultureInvariant, options.Value.MatchTimeout));
    }

    /// <summary>Replaces each match's <c>s</c> group (or the whole match when the pattern has none) by the marker.</summary>
    private static string Replace(Regex regex, string text, string kind, Dictionary<string, int> kinds)
    {
        var found = 0;
        var marker = Marker(kind);
        var replaced = regex.Replace(text, m =>
        {
            var secret = m.Groups["s"] is { Success: true } s ? s : (Group)m;
            if (secret.Length == 0 || secret.Value.StartsWith("[redacted:", StringComparison.Ordinal))
            {
                return m.Value;
            }
            found++;
            var result = new StringBuilder(m.Length);
            result.Append(m.Value, 0, secret.Index - m.Index);
            result.Append(marker);
            result.Append(m.Value, secret.Index - m.Index + secret.Length, m.Index + m.Length - secret.Index - secret.Length);
            return result.ToString();
        });
        if (found > 0)
        {
            kinds[kind] = kinds.GetValueOrDefault(kind) + found;
        }
        return replaced;
    }
}
