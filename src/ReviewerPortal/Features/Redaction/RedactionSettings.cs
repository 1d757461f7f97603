namespace ReviewerPortal.Features.Redaction;

/// <summary>
/// A tenant's redaction settings: payload fields masked wherever a person reads the payload (dotted paths from the
/// payload's root, arrays walked element by element, names compared ignoring case), and the tenant's own secret
/// patterns, scanned for in every free text besides the built-in kinds.
/// </summary>
public sealed record RedactionSettings
{
    public const int MaxFields = 100;
    public const int MaxPatterns = 20;
    public const int MaxRegexLength = 500;

    public static readonly RedactionSettings None = new();

    /// <summary>Payload paths such as <c>apiKey</c> or <c>card.number</c>.</summary>
    public IReadOnlyList<string> Fields { get; init; } = [];

    /// <summary>The tenant's patterns; a match becomes <c>[redacted:{name}]</c>.</summary>
    public IReadOnlyList<RedactPattern> Patterns { get; init; } = [];

    public bool Equals(RedactionSettings? other) =>
        other is not null && Fields.SequenceEqual(other.Fields) && Patterns.SequenceEqual(other.Patterns);

    public override int GetHashCode() => HashCode.Combine(Fields.Count, Patterns.Count);
}

/// <summary>One tenant pattern: <see cref="Name"/> (lowercase letters, digits, <c>_</c>, <c>-</c>) names the kind in the marker.</summary>
public sealed record RedactPattern(string Name, string Regex);
