using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// <c>POST /api/v1/approvals/{id}/edit-and-approve</c>: the edited payload (topic, env and channel stay) and, as for
/// approve, an optional reason and the job hash and policy snapshot the reviewer saw. Masked fields sent back as
/// <c>"[redacted:field]"</c> keep their value.
/// </summary>
public sealed record EditAndApproveRequest
{
    public JsonElement Payload { get; init; }
    public string? Reason { get; init; }
    public string? JobHash { get; init; }
    public string? PolicySnapshot { get; init; }
}

/// <summary>Edit before approve: one call edits the job and approves the edited version (see <see cref="ApprovalService.EditAndApproveAsync"/>).</summary>
public static class EditAndApproveApi
{
    public static IEndpointRouteBuilder MapEditAndApproveApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/approvals/{id}/edit-and-approve", EditAndApprove).WithTags("Approvals").WithName("EditAndApprove")
            .RequireAuthorization(AuthSetup.ApiPolicy).RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Approve an edited payload: a new version (new job hash) judged by the policy, audited with the field diff; the agent gets edited: true.");
        return routes;
    }

    public static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> EditAndApprove(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, Receipts.ReceiptSigner signer, Audit.AuditLog audit,
        ReviewerView view, IOptions<ApprovalOptions> options, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.EditAndApproveRequest, maxBytes: options.Value.SubmitLimit);
        if (error is not null)
        {
            return error;
        }
        var errors = new Dictionary<string, string[]>();
        JobsApi.ValidatePayload(body!.Payload, errors);
        if (body.Reason is { Length: > 2000 })
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
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var result = await approvals.EditAndApproveAsync(Caller.From(user), id, body.Payload,
            new DecideCommand(body.Reason, body.JobHash, body.PolicySnapshot, Via: "api"), cancellationToken);
        if (result.InvalidField is { } field)
        {
            return Problems.Invalid(field, result.Problem!);
        }
        if (result.Outcome.Code == "policy_denied")
        {
            return Problems.Of(StatusCodes.Status403Forbidden, "policy_denied", result.Outcome.Detail!,
                new Dictionary<string, object?> { ["ruleId"] = result.RuleId });
        }
        var outcome = result.Outcome;
        var receipt = outcome.Kind is Outcome.Ok or Outcome.AlreadyDone && outcome.Approval is { State: ApprovalStates.Approved } decided
            ? await signer.IssueAsync(decided, outcome.AuditHead ?? await audit.HeadAsync(decided.Tenant, cancellationToken))
            : null;
        return ApprovalsApi.ToResult(await ApprovalsApi.MaskedAsync(outcome, view), ApprovalStates.Approved, receipt);
    }

    private static bool IsSha256(string value) =>
        value.Length == 64 && value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
