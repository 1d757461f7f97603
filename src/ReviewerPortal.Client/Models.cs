using System.Text.Json;

namespace ReviewerPortal.Client;

/// <summary>What an agent asks to run.</summary>
public sealed record JobSubmission(string Topic, string Env, object Payload, string? Channel = null, string? Priority = null, string? IdempotencyKey = null,
    string? RequestedBy = null);

/// <summary>The policy's answer to a submit.</summary>
public sealed record SubmitResult
{
    /// <summary><c>allow</c>, <c>deny</c>, <c>throttle</c> or <c>require_human</c>.</summary>
    public required string Decision { get; init; }
    public string? JobId { get; init; }
    public string? ApprovalId { get; init; }
    public string? State { get; init; }
    public string? PolicySnapshot { get; init; }
    public string? JobHash { get; init; }
    public string? RuleId { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Replayed { get; init; }

    /// <summary>Throttled: when to try again.</summary>
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>Denied or throttled: the problem's explanation.</summary>
    public string? Detail { get; init; }

    public bool NeedsHuman => Decision == "require_human";
}

/// <summary>An approval as the API returns it.</summary>
public sealed record ApprovalInfo
{
    public required string Id { get; init; }
    public required string Tenant { get; init; }
    public required string JobId { get; init; }
    public required string State { get; init; }
    public required string PolicySnapshot { get; init; }
    public required string JobHash { get; init; }
    public string? RuleId { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset ExpiresAt { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
    public string? DecidedBy { get; init; }
    public string? Reason { get; init; }
    public JsonElement Job { get; init; }

    /// <summary>1, then one more per resubmission after changes were requested.</summary>
    public int Version { get; init; } = 1;
    public int EscalationLevel { get; init; }
    public int RemindersSent { get; init; }
    public string? ChangesRequestedBy { get; init; }
    public string? ChangesReason { get; init; }

    /// <summary>While changes are requested: resubmit before this.</summary>
    public DateTimeOffset? ResubmitBy { get; init; }

    /// <summary>A reviewer edited the payload before approving: run <see cref="Job"/>'s payload (and hash), not what was submitted.</summary>
    public bool Edited { get; init; }
    public string? EditedBy { get; init; }

    public bool IsPending => State == "pending";
    public bool IsApproved => State == "approved";

    /// <summary>A reviewer asked for changes: resubmit an amended payload (or withdraw).</summary>
    public bool IsChangesRequested => State == "changes_requested";
}

/// <summary>A compliance case as the API returns it: documents requested → submitted → reviewer decision, looped.</summary>
public sealed record CaseInfo
{
    public required string Id { get; init; }
    public required string Tenant { get; init; }
    public required string Subject { get; init; }

    /// <summary><c>documents_requested</c>, <c>in_review</c>, <c>approved</c>, <c>rejected</c> or <c>escalated</c>.</summary>
    public required string State { get; init; }
    public DateTimeOffset OpenedAt { get; init; }
    public DateTimeOffset ClosesAt { get; init; }
    public int MaxIterations { get; init; }
    public int Iteration { get; init; }
    public DateTimeOffset? NextDeadline { get; init; }
    public string? OutcomeReason { get; init; }

    /// <summary>Every loop: what was requested and by when, what was submitted, what the reviewer decided.</summary>
    public JsonElement Iterations { get; init; }

    public bool WantsDocuments => State == "documents_requested";
    public bool IsClosed => State is "approved" or "rejected" or "escalated";
}

/// <summary>The answer to approve / reject: <c>Result</c> is e.g. <c>approved</c> or <c>already_approved</c>.</summary>
public sealed record DecisionResult(string Result, string State, ApprovalInfo Approval, ApprovalReceipt? Receipt = null);

/// <summary>A recorded side effect: <see cref="FirstTime"/> is false when an earlier call stored <see cref="Result"/>.</summary>
public sealed record SideEffectResult(string ApprovalId, string ActionId, JsonElement Result, bool FirstTime);

/// <summary>A transition pushed by the hub.</summary>
public sealed record ApprovalChanged(string Tenant, string ApprovalId, string State, string Action, DateTimeOffset At);

/// <summary>An error answer of the API (RFC 7807), with its status and machine-readable code.</summary>
public sealed class ReviewerPortalException(int status, string? code, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string? Code { get; } = code;
}
