using System.Text.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// The states of an approval. <see cref="Pending"/> and <see cref="ChangesRequested"/> (waiting for the submitter's
/// resubmission) can change; the others are final.
/// </summary>
public static class ApprovalStates
{
    public const string Pending = "pending";
    public const string ChangesRequested = "changes_requested";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string Expired = "expired";
    public const string Withdrawn = "withdrawn";

    /// <summary>Timed out with the outcome <c>escalate</c>: handed over outside the queue; the job does not run.</summary>
    public const string Escalated = "escalated";

    public static readonly IReadOnlyList<string> All = [Pending, ChangesRequested, Approved, Rejected, Expired, Withdrawn, Escalated];

    public static bool IsKnown(string? state) => state is not null && All.Contains(state);

    public static bool IsOpen(string state) => state is Pending or ChangesRequested;
}

/// <summary>
/// One reviewer's vote (quorum approvals keep every vote of the current version). <see cref="By"/> is the seat it counts
/// for; <see cref="Delegate"/> the person who cast it for them while they were away (null: they voted themselves).
/// </summary>
public sealed record Vote(string By, string Verdict, DateTimeOffset At, string? Reason,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    string? Delegate = null)
{
    /// <summary>Who cast it: the delegate, or the seat's owner.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Voter => Delegate ?? By;

    /// <summary><c>bob for alice</c>, or <c>alice</c>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Display => Delegate is null ? By : $"{Delegate} for {By}";
}

/// <summary>An earlier version of the job, replaced by a resubmission after changes were requested.</summary>
public sealed record ApprovalVersion(int Version, string JobId, string JobHash, string PolicySnapshot, JsonElement Payload,
    DateTimeOffset SubmittedAt, string? ChangesRequestedBy, string? ChangesReason, IReadOnlyList<Vote> Votes);

/// <summary>The next durable timer of an approval: <c>reminder</c>, <c>escalation</c>, <c>timeout</c>, <c>expiry</c> or <c>resubmission_window</c>.</summary>
public sealed record NextTimer(string Kind, DateTimeOffset DueAt);

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

    /// <summary>The person the agent acted for (separation of duties: they may not approve it).</summary>
    public string? RequestedBy { get; init; }

    /// <summary>
    /// The W3C trace context of the submit (the agent's trace, from its <c>traceparent</c> header): the decision, the
    /// dispatch and the notifications continue it. Kept in Redis, not part of the API's answer.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? TraceParent { get; init; }

    /// <summary>1, then one more for each resubmission after changes were requested.</summary>
    public int Version { get; init; } = 1;

    /// <summary>When the current version was submitted (the creation, or the latest resubmission).</summary>
    public DateTimeOffset? VersionSubmittedAt { get; init; }

    /// <summary>The earlier versions, oldest first.</summary>
    public IReadOnlyList<ApprovalVersion> Lineage { get; init; } = [];

    /// <summary>
    /// A reviewer edited the payload and approved the edited job (issue 16): the current version is that edit, its job
    /// hash and payload are what the agent must run.
    /// </summary>
    public bool Edited { get; init; }

    /// <summary>Who edited the current version's payload (with <see cref="Edited"/>).</summary>
    public string? EditedBy { get; init; }

    /// <summary>The votes on the current version.</summary>
    public IReadOnlyList<Vote> Votes { get; init; } = [];

    /// <summary>0: the tenant's approvers; n: escalated to the n-th level.</summary>
    public int EscalationLevel { get; init; }

    /// <summary>Reminders sent for this version, all levels.</summary>
    public int RemindersSent { get; init; }

    /// <summary>Reminders sent at the current level.</summary>
    public int LevelReminders { get; init; }

    /// <summary>When the current level's SLA started.</summary>
    public DateTimeOffset? LevelStartedAt { get; init; }

    /// <summary>The next reminder, escalation or timeout: <c>reminder</c>, <c>escalation</c> or <c>timeout</c>.</summary>
    public string? NextStep { get; init; }
    public DateTimeOffset? NextStepAt { get; init; }

    /// <summary>The outcome when every level ran out, bound at submit (the rule's <c>on_timeout</c> or the tenant's).</summary>
    public string? TimeoutOutcome { get; init; }

    /// <summary>While changes are requested: the submitter may resubmit until then.</summary>
    public DateTimeOffset? ResubmitBy { get; init; }
    public string? ChangesRequestedBy { get; init; }
    public string? ChangesReason { get; init; }
    public string? LastResubmitKey { get; init; }

    /// <summary>The next timer that will act on this approval.</summary>
    public NextTimer? NextTimer => State switch
    {
        ApprovalStates.Pending when NextStepAt is { } step && step < ExpiresAt => new NextTimer(NextStep!, step),
        ApprovalStates.Pending => new NextTimer("expiry", ExpiresAt),
        ApprovalStates.ChangesRequested when ResubmitBy is { } by => new NextTimer("resubmission_window", by),
        _ => null,
    };
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

    /// <summary>The W3C trace context of the submit: the dispatch continues it. Kept in Redis, not part of the API's answer.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string? TraceParent { get; init; }
}
