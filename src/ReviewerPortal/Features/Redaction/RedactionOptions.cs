using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Redaction;

/// <summary>How free text is scanned for secrets (section <c>Redaction</c>).</summary>
public sealed class RedactionOptions
{
    public const string Section = "Redaction";

    /// <summary>
    /// The most one of the tenant's patterns may spend on one text, so a catastrophic pattern cannot hold a request (the
    /// built-in patterns are linear and have a fixed 2 s bound). A text whose scan runs out of time is not stored as written: it becomes
    /// <c>[redacted:unscanned]</c> (fail closed).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:05")]
    public TimeSpan MatchTimeout { get; set; } = TimeSpan.FromSeconds(1);
}
