using System.Text.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>The states of an approval. Only <see cref="Pending"/> can change.</summary>
public static class ApprovalStates
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string Expired = "expired";

    public static readonly IReadOnlyList<string> All = [Pending, Approved, Rejected, Expired];

    public static bool IsKnown(string? state) => state is not null && All.Contains(state);
}

/// <summary>What an agent asked to run.</summary>
public sealed record JobRequest(string Topic, string Env, string? Channel, string Priority, JsonElement Payload);

/// <summary>A human-required action parked until a reviewer decides, bound to a policy snapshot and a job hash.</summary>
public sealed record Approval
{
    public required string Id { get; init; }
    public required string Tenant { get; init; }
    public required string JobId { get; init; }
    public required string State { get; init; }
    public required JobRequest Job { get; init; }
    public required string Submitter { get; init; }
    public string? IdempotencyKey { get; init; }
    public required string PolicySnapshot { get; init; }
    public required string JobHash { get; init; }
    public string? RuleId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
    public string? DecidedBy { get; init; }
    public string? Reason { get; init; }
    public int Seq { get; init; }
    public DateTimeOffset? ReevaluatedAt { get; init; }
    public string? ReevaluationNote { get; init; }

    /// <summary>Publication to the tenant's sink: none, pending, dispatched, completed, failed or stuck.</summary>
    public string Dispatch { get; init; } = "none";

    /// <summary>The release label: set in the same step as the approval, before anything is published.</summary>
    public bool ApprovalGranted { get; init; }
}

/// <summary>A job the policy allowed outright (kept for idempotent answers and later dispatch).</summary>
public sealed record AllowedJob
{
    public required string Id { get; init; }
    public required string Tenant { get; init; }
    public required JobRequest Job { get; init; }
    public required string Submitter { get; init; }
    public required string PolicySnapshot { get; init; }
    public required string JobHash { get; init; }
    public string? RuleId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Publication to the tenant's sink: none, pending, dispatched, completed, failed or stuck.</summary>
    public string Dispatch { get; init; } = "none";
}
