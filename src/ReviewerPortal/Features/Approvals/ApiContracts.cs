using System.Text.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary><c>POST /api/v1/jobs</c>: what an agent wants to run.</summary>
public sealed record SubmitJobRequest
{
    public string? Topic { get; init; }
    public string? Env { get; init; }
    public string? Channel { get; init; }
    public string? Priority { get; init; }
    public JsonElement Payload { get; init; }
    public string? IdempotencyKey { get; init; }

    /// <summary>The person the agent acts for; separation of duties keeps them from approving it.</summary>
    public string? RequestedBy { get; init; }
}

/// <summary><c>POST /api/v1/approvals/{id}/request-changes</c>.</summary>
public sealed record RequestChangesRequest
{
    public string? Reason { get; init; }
}

/// <summary><c>POST /api/v1/approvals/{id}/resubmit</c>: the amended payload (topic, env and channel stay).</summary>
public sealed record ResubmitRequest
{
    public JsonElement Payload { get; init; }
    public string? IdempotencyKey { get; init; }
}

/// <summary><c>POST /api/v1/approvals/{id}/withdraw</c>.</summary>
public sealed record WithdrawRequest
{
    public string? Reason { get; init; }
}

/// <summary>200 (allow) or 202 (require_human) answer to a submit.</summary>
public sealed record SubmitJobResponse
{
    public required string JobId { get; init; }
    public string? ApprovalId { get; init; }
    public required string Decision { get; init; }
    public required string State { get; init; }
    public required string PolicySnapshot { get; init; }
    public required string JobHash { get; init; }
    public string? RuleId { get; init; }
    public DateTimeOffset? ExpiresAt { get; init; }
    public bool Replayed { get; init; }
}

/// <summary>Body of approve / reject (all optional: an empty body is a decision without a reason).</summary>
public sealed record DecideRequest
{
    public string? Reason { get; init; }
    public string? JobHash { get; init; }
    public string? PolicySnapshot { get; init; }
}

/// <summary>Answer to approve / reject / re-evaluate: <c>result</c> is <c>approved</c>, <c>already_approved</c>, …</summary>
public sealed record DecisionResponse(string Result, string State, Approval Approval, string? Note = null)
{
    /// <summary>The signed receipt of the decision (approve / reject).</summary>
    public Receipts.ApprovalReceipt? Receipt { get; init; }
}

public sealed record ReevaluateRequest
{
    public string? Reason { get; init; }
}

public sealed record ApprovalListResponse(string Tenant, string State, IReadOnlyList<Approval> Items, string? NextCursor);
