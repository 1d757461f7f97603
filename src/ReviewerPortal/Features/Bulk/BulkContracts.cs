namespace ReviewerPortal.Features.Bulk;

/// <summary>
/// <c>POST /api/v1/approvals/bulk</c>: one verdict and one reason for a list of approvals (each with the job hash and
/// policy snapshot the reviewer saw, optional) or for the pending approvals a filter selects; never both.
/// </summary>
public sealed record BulkDecideRequest
{
    /// <summary><c>approve</c> or <c>reject</c>.</summary>
    public string? Verdict { get; init; }
    public string? Reason { get; init; }
    public IReadOnlyList<BulkItemRequest?>? Items { get; init; }
    public BulkFilter? Filter { get; init; }
}

public sealed record BulkItemRequest
{
    public string? Id { get; init; }
    public string? JobHash { get; init; }
    public string? PolicySnapshot { get; init; }
}

/// <summary>
/// The pending approvals of one tenant to decide: <c>topic</c> exact (or a prefix ending in <c>*</c>), <c>env</c>
/// exact, <c>olderThan</c> a duration (<c>30m</c>, <c>2h</c>, <c>P1D</c>), <c>risk</c> the job's priority
/// (<c>low</c>, <c>normal</c>, <c>high</c>, <c>critical</c>). Each match is decided against the job hash read when it was selected.
/// </summary>
public sealed record BulkFilter
{
    public string? Tenant { get; init; }
    public string? Topic { get; init; }
    public string? Env { get; init; }
    public string? OlderThan { get; init; }
    public string? Risk { get; init; }
}

/// <summary>
/// The answer to a bulk decision (HTTP 200 whatever the items' outcomes, 207-style): each item's own status code as the
/// single approve / reject endpoint would give it, its result and code.
/// </summary>
public sealed record BulkDecisionResponse(string Verdict, int Count, int Succeeded, int Failed, IReadOnlyList<BulkItemResult> Items);

/// <summary>
/// One item's outcome. <c>result</c>: <c>approved</c>, <c>rejected</c>, <c>vote_recorded</c>, <c>already_approved</c>,
/// <c>already_rejected</c>, <c>refused</c> (403), <c>conflict</c> (409), <c>not_found</c> (404), <c>locked</c> (423),
/// <c>unavailable</c> (503); <c>code</c> the single endpoint's problem code (<c>job_changed</c>, <c>requester_may_not_approve</c>, …).
/// </summary>
public sealed record BulkItemResult(string Id, int Status, string Result, string? Code = null, string? Detail = null, string? State = null,
    string? JobHash = null, string? PolicySnapshot = null)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Succeeded => Status is >= 200 and < 300;
}
