using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Reading, waiting for and deciding approvals. Another tenant's approval is always a 404.</summary>
public static class ApprovalsApi
{
    public const int MaxWaitSeconds = 60;
    public const int MaxPageSize = 200;

    public static IEndpointRouteBuilder MapApprovalsApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/approvals").WithTags("Approvals").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapGet("/", List).WithName("ListApprovals")
            .WithSummary("A tenant's approvals in one state, oldest first, cursor-paged.");
        routes.MapGet("/api/v1/tenants/{tenant}/queue-stats", Stats).WithTags("Approvals").WithName("QueueStats")
            .RequireAuthorization(AuthSetup.ApiPolicy)
            .WithSummary("Pending count, oldest age, age histogram and expiring-within-the-hour, from sorted-set counts.");
        group.MapGet("/{id}", Get).WithName("GetApproval")
            .WithSummary("One approval: state, job, snapshot, hashes, times, decider, reason.");
        group.MapGet("/{id}/decision", WaitForDecision).WithName("WaitForDecision")
            .WithSummary("Long-poll: answers as soon as the approval leaves pending, or after waitSeconds (≤ 60).");
        group.MapPost("/{id}/approve", Approve).WithName("Approve").RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Approve under the approval's lock; idempotent (already_approved); 409 on drift.");
        group.MapPost("/{id}/reject", Reject).WithName("Reject").RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Reject under the approval's lock; idempotent (already_rejected).");
        group.MapPost("/{id}/reevaluate", Reevaluate).WithName("Reevaluate").RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Take a fresh snapshot under the tenant's current policy (the way out of snapshot_changed).");
        return routes;
    }

    public static async Task<Results<Ok<ApprovalListResponse>, ValidationProblem, ProblemHttpResult>> List(
        ClaimsPrincipal user, ApprovalService approvals, TenantAccess access, ReviewerView view,
        string? tenant = null, string? state = null, string? cursor = null, int? limit = null)
    {
        var caller = Caller.From(user);
        state ??= ApprovalStates.Pending;
        if (!ApprovalStates.IsKnown(state))
        {
            return Problems.Invalid("state", $"One of {string.Join(", ", ApprovalStates.All)}.");
        }
        if (limit is < 1 or > MaxPageSize)
        {
            return Problems.Invalid("limit", $"From 1 to {MaxPageSize}.");
        }
        if (cursor is not null && !PageCursor.TryParse(cursor, out _, out _))
        {
            return Problems.Invalid("cursor", "Not a cursor this API returned.");
        }
        if (tenant is null)
        {
            var readable = await access.ReadableTenantsAsync(caller);
            if (readable.Count != 1)
            {
                return Problems.Invalid("tenant", "Name the tenant (you can read several).");
            }
            tenant = readable[0];
        }
        var page = await approvals.ListAsync(caller, tenant, state, cursor, limit ?? 50);
        return page is null
            ? Problems.NotFound("tenant")
            : TypedResults.Ok(new ApprovalListResponse(tenant, state, await view.ForAsync(caller, tenant, page.Items), page.NextCursor));
    }

    public static async Task<Results<Ok<QueueStats>, ProblemHttpResult>> Stats(
        string tenant, ClaimsPrincipal user, TenantAccess access, IApprovalStore store, TimeProvider time) =>
        await access.CanReadAsync(Caller.From(user), tenant)
            ? TypedResults.Ok(await store.StatsAsync(tenant, time.GetUtcNow()))
            : Problems.NotFound("tenant");

    /// <summary>The approval; its payload masked where the tenant lists fields, unless an agent asks (see <see cref="ReviewerView"/>).</summary>
    public static async Task<Results<Ok<Approval>, ProblemHttpResult>> Get(string id, ClaimsPrincipal user, ApprovalService approvals, ReviewerView view) =>
        await approvals.GetAsync(Caller.From(user), id) is { } approval
            ? TypedResults.Ok(await view.ForAsync(Caller.From(user), approval))
            : Problems.NotFound();

    public static async Task<Results<Ok<Approval>, ValidationProblem, ProblemHttpResult>> WaitForDecision(
        string id, ClaimsPrincipal user, ApprovalService approvals, ReviewerView view, WaitSlots slots, HttpResponse response, CancellationToken cancellationToken,
        int? waitSeconds = null)
    {
        if (waitSeconds is < 0 or > MaxWaitSeconds)
        {
            return Problems.Invalid("waitSeconds", $"From 0 to {MaxWaitSeconds}.");
        }
        var holder = WaitSlots.HolderOf(user);
        if (!slots.TryEnter(holder))
        {
            response.Headers.RetryAfter = "1";
            return Problems.Of(StatusCodes.Status429TooManyRequests, "too_many_waits",
                $"This key or account already holds {slots.Limit} open waits here; let one finish, or wait on the hub.");
        }
        try
        {
            var approval = await approvals.WaitForDecisionAsync(Caller.From(user), id, TimeSpan.FromSeconds(waitSeconds ?? 0), cancellationToken);
            return approval is null ? Problems.NotFound() : TypedResults.Ok(await view.ForAsync(Caller.From(user), approval));
        }
        finally
        {
            slots.Exit(holder);
        }
    }

    public static Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> Approve(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, Receipts.ReceiptSigner signer, Audit.AuditLog audit,
        ReviewerView view, CancellationToken cancellationToken) =>
        DecideAsync(id, Verdict.Approve, request, user, approvals, signer, audit, view, cancellationToken);

    public static Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> Reject(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, Receipts.ReceiptSigner signer, Audit.AuditLog audit,
        ReviewerView view, CancellationToken cancellationToken) =>
        DecideAsync(id, Verdict.Reject, request, user, approvals, signer, audit, view, cancellationToken);

    private static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> DecideAsync(
        string id, Verdict verdict, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, Receipts.ReceiptSigner signer,
        Audit.AuditLog audit, ReviewerView view, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.DecideRequest, optional: true);
        if (error is not null)
        {
            return error;
        }
        if (body!.Reason is { Length: > 2000 })
        {
            return Problems.Invalid("reason", "At most 2000 characters.");
        }
        if (body.JobHash is not null && !IsSha256(body.JobHash))
        {
            return Problems.Invalid("jobHash", "A lowercase hex SHA-256 (64 characters).");
        }
        if (body.PolicySnapshot is not null && !IsSha256(body.PolicySnapshot))
        {
            return Problems.Invalid("policySnapshot", "A lowercase hex SHA-256 (64 characters).");
        }
        var outcome = await approvals.DecideAsync(Caller.From(user), id, verdict,
            new DecideCommand(body.Reason, body.JobHash, body.PolicySnapshot, Via: "api"), cancellationToken);
        var receipt = outcome.Kind is Outcome.Ok or Outcome.AlreadyDone && outcome.Approval is { } decided
            ? await signer.IssueAsync(decided, outcome.AuditHead ?? await audit.HeadAsync(decided.Tenant, cancellationToken))
            : null;
        return ToResult(await MaskedAsync(outcome, view), verdict == Verdict.Approve ? ApprovalStates.Approved : ApprovalStates.Rejected, receipt);
    }

    public static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> Reevaluate(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, ReviewerView view, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.ReevaluateRequest, optional: true);
        if (error is not null)
        {
            return error;
        }
        if (body!.Reason is { Length: > 2000 })
        {
            return Problems.Invalid("reason", "At most 2000 characters.");
        }
        var outcome = await approvals.ReevaluateAsync(Caller.From(user), id, body.Reason, cancellationToken);
        return ToResult(await MaskedAsync(outcome, view), "reevaluated");
    }

    /// <summary>An outcome answered to a person (the decision endpoints are for accounts only): its approval masked.</summary>
    internal static async Task<DecisionOutcome> MaskedAsync(DecisionOutcome outcome, ReviewerView view) => outcome.Approval is { } approval
        ? outcome with
        {
            Approval = outcome.RedactionFields is { } fields ? Redaction.PayloadMasking.Mask(approval, fields) : await view.MaskAsync(approval),
        }
        : outcome;

    /// <summary>One mapping of outcomes to status codes, shared by every decision endpoint.</summary>
    internal static Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult> ToResult(DecisionOutcome outcome, string result,
        Receipts.ApprovalReceipt? receipt = null) =>
        outcome.Kind switch
        {
            Outcome.Ok => TypedResults.Ok(new DecisionResponse(outcome.Code ?? result, outcome.Approval!.State, outcome.Approval, outcome.Detail) { Receipt = receipt }),
            Outcome.AlreadyDone => TypedResults.Ok(new DecisionResponse(outcome.Code!, outcome.Approval!.State, outcome.Approval) { Receipt = receipt }),
            Outcome.NotFound => Problems.NotFound(),
            Outcome.Forbidden => Problems.Of(StatusCodes.Status403Forbidden, outcome.Code!, outcome.Detail!),
            Outcome.Locked => Problems.Of(StatusCodes.Status423Locked, outcome.Code!, outcome.Detail!),
            Outcome.Conflict => Problems.Of(StatusCodes.Status409Conflict, outcome.Code!, outcome.Detail!,
                new Dictionary<string, object?>
                {
                    ["state"] = outcome.Approval?.State,
                    ["policySnapshot"] = outcome.Approval?.PolicySnapshot,
                    ["jobHash"] = outcome.Approval?.JobHash,
                }),
            _ => Problems.Of(StatusCodes.Status503ServiceUnavailable, outcome.Code ?? "unavailable", outcome.Detail ?? "Unavailable."),
        };

    private static bool IsSha256(string value) =>
        value.Length == 64 && value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
