using System.Security.Claims;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Policies;

/// <summary>
/// <c>POST /api/v1/approvals/{id}/approve-always</c>: approve (as <c>approve</c>: reason, and the job hash and snapshot
/// the reviewer saw) and add a standing approval for <c>for</c> (a duration up to the tenant's
/// <c>standingApprovalMax</c>), for the same topic, env and channel and the same values of <c>fields</c>
/// (<c>payload.&lt;path&gt;</c>).
/// </summary>
public sealed record ApproveAlwaysRequest
{
    public string? Reason { get; init; }
    public string? JobHash { get; init; }
    public string? PolicySnapshot { get; init; }
    public string? For { get; init; }
    public IReadOnlyList<string>? Fields { get; init; }
}

public sealed record ApproveAlwaysResponse(string Result, string State, Approval Approval, StandingApprovalGranted? Standing)
{
    public Receipts.ApprovalReceipt? Receipt { get; init; }
}

/// <summary>Standing approvals: added with an approval, listed for the tenant's readers, revoked by an admin.</summary>
public static partial class StandingApprovalsApi
{
    public const int MaxFields = 10;

    [GeneratedRegex("^payload(\\.[A-Za-z0-9_$-]+)+$")]
    private static partial Regex PayloadPath();

    public static IEndpointRouteBuilder MapStandingApprovalsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/approvals/{id}/approve-always", ApproveAlways).WithTags("Approvals").WithName("ApproveAlways")
            .RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Approve and add a standing approval (a published allow rule with until) for the same topic and env, optionally the same values of chosen payload fields.");
        var group = routes.MapGroup("/api/v1/tenants/{tenant}/standing-approvals").WithTags("Policies").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapGet("/", List).WithName("ListStandingApprovals")
            .WithSummary("The standing approvals in the tenant's current policy, each with its end and whether it still counts.");
        group.MapDelete("/{ruleId}", Revoke).WithName("RevokeStandingApproval").RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: remove a standing approval (publishes a new policy version).");
        return routes;
    }

    public static async Task<Results<Ok<ApproveAlwaysResponse>, ValidationProblem, ProblemHttpResult>> ApproveAlways(
        string id, HttpRequest request, ClaimsPrincipal user, StandingApprovals standing,
        Receipts.ReceiptSigner signer, Audit.AuditLog audit, ReviewerView view, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.ApproveAlwaysRequest);
        if (error is not null)
        {
            return error;
        }
        var errors = new Dictionary<string, string[]>();
        if (body!.Reason is { Length: > 2000 })
        {
            errors["reason"] = ["At most 2000 characters."];
        }
        if (body.JobHash is not null && !IsSha256(body.JobHash))
        {
            errors["jobHash"] = ["A lowercase hex SHA-256 (64 characters)."];
        }
        if (body.PolicySnapshot is not null && !IsSha256(body.PolicySnapshot))
        {
            errors["policySnapshot"] = ["A lowercase hex SHA-256 (64 characters)."];
        }
        var fields = body.Fields ?? [];
        if (fields.Count > MaxFields)
        {
            errors["fields"] = [$"At most {MaxFields} fields."];
        }
        for (var i = 0; i < fields.Count && i < MaxFields; i++)
        {
            if (fields[i] is not { } field || !PayloadPath().IsMatch(field))
            {
                errors[$"fields[{i}]"] = ["A payload path, e.g. payload.vendor or payload.account.id."];
            }
        }
        if (!DurationText.TryParse(body.For, out var duration))
        {
            errors["for"] = ["Required: how long it stands, e.g. 8h or 24h."];
        }
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }

        var result = await standing.ApproveAlwaysAsync(Caller.From(user), id, body.Reason, body.JobHash, body.PolicySnapshot, duration, fields, "api", cancellationToken);
        if (result.Errors is { } invalid)
        {
            return Problems.Invalid(new Dictionary<string, string[]>(invalid));
        }
        var outcome = result.Outcome;
        if (outcome is not { Kind: Outcome.Ok, Approval: { State: ApprovalStates.Approved } decided })
        {
            if (outcome.Kind == Outcome.AlreadyDone)
            {
                return Problems.Of(StatusCodes.Status409Conflict, outcome.Code!, "The approval was already decided; no standing approval was added.");
            }
            return ApprovalsApi.ToResult(outcome, ApprovalStates.Approved).Result switch
            {
                ValidationProblem problem400 => problem400,
                ProblemHttpResult problem => problem,
                _ => Problems.Of(StatusCodes.Status409Conflict, outcome.Code ?? "not_decided", "The approval was not decided; no standing approval was added."),
            };
        }
        var granted = result.Granted;
        var receipt = await signer.IssueAsync(decided, await audit.HeadAsync(decided.Tenant, cancellationToken));
        return TypedResults.Ok(new ApproveAlwaysResponse("approved", decided.State, await view.MaskAsync(decided), granted) { Receipt = receipt });
    }

    public static async Task<Results<Ok<StandingApprovalList>, ProblemHttpResult>> List(
        string tenant, ClaimsPrincipal user, TenantAccess access, StandingApprovals standing) =>
        await access.CanReadAsync(Caller.From(user), tenant)
            ? TypedResults.Ok(new StandingApprovalList(tenant, await standing.ListAsync(tenant)))
            : Problems.NotFound("tenant");

    public static async Task<Results<Ok<StandingApprovalList>, ProblemHttpResult>> Revoke(
        string tenant, string ruleId, ClaimsPrincipal user, TenantStore tenants, StandingApprovals standing, CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        return await standing.RevokeAsync(tenant, ruleId, Caller.From(user), cancellationToken)
            ? TypedResults.Ok(new StandingApprovalList(tenant, await standing.ListAsync(tenant)))
            : Problems.NotFound("standing approval");
    }

    private static bool IsSha256(string value) =>
        value.Length == 64 && value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
