namespace ReviewerPortal.Features.Delegation;

/// <summary>How the portal names a delegate's step: <c>user:bob for alice</c>, from the audit row's <c>for: alice</c>.</summary>
public static class ActingFor
{
    public const string DetailPrefix = "for: ";

    /// <summary>The person a delegate acted for, from the audit details (<c>via: api; for: alice; …</c>), or null.</summary>
    public static string? From(string? details) =>
        details?.Split("; ").FirstOrDefault(p => p.StartsWith(DetailPrefix, StringComparison.Ordinal))?[DetailPrefix.Length..];

    /// <summary><c>user:bob for alice</c> when the row records a delegate's step, else the actor.</summary>
    public static string Actor(string actor, string? details) => From(details) is { Length: > 0 } person ? $"{actor} for {person}" : actor;
}
