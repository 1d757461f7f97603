using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Redaction;

/// <summary>How free text is scanned for secrets (section <c>Redaction</c>).</summary>
public sealed class RedactionOptions
{
    public const string Section = "Redaction";

    /// <summary>
    /// The most one pattern may spend on one text (built-in and tenant patterns alike), so a catastrophic tenant pattern
    /// cannot hold a request. A text whose scan runs out of time is not stored as written: it becomes
    /// <c>[redacted:unscanned]</c> (fail closed).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:05")]
    public TimeSpan MatchTimeout { get; set; } = TimeSpan.FromMilliseconds(250);
}
