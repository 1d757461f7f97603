using Microsoft.Extensions.Options;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Request changes (reviewers), resubmit and withdraw (the submitting agent), and the tenant's notification status.</summary>
public static class WorkflowApi
{
    public static IEndpointRouteBuilder MapWorkflowApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/approvals").WithTags("Approvals").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapPost("/{id}/request-changes", RequestChanges).WithName("RequestChanges").RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Send the job back to the submitter with a comment; it may be resubmitted within the tenant's window.");
        group.MapPost("/{id}/resubmit", Resubmit).WithName("Resubmit").RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("The submitter's amended payload after changes were requested: a new version, new job hash, lineage kept.");
        group.MapPost("/{id}/withdraw", Withdraw).WithName("Withdraw").RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("The submitter withdraws a pending approval or one waiting for resubmission. Final.");
        routes.MapGet("/api/v1/tenants/{tenant}/notifications", Notifications).WithTags("Tenants").WithName("NotificationStatus")
            .RequireAuthorization(AuthSetup.ApiPolicy)
            .WithSummary("Notifications waiting for delivery and the latest failed attempts.");
        return routes;
    }

    public static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> RequestChanges(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, Redaction.ReviewerView view, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.RequestChangesRequest);
        if (error is not null)
        {
            return error;
        }
        if (string.IsNullOrWhiteSpace(body!.Reason))
        {
            return Problems.Invalid("reason", "Required: tell the submitter what to change.");
        }
        if (body.Reason.Length > 2000)
        {
            return Problems.Invalid("reason", "At most 2000 characters.");
        }
        var outcome = await approvals.RequestChangesAsync(Caller.From(user), id, body.Reason, cancellationToken);
        return ApprovalsApi.ToResult(await ApprovalsApi.MaskedAsync(outcome, view), "changes_requested");
    }

    public static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> Resubmit(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, IOptions<ApprovalOptions> options,
        CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.ResubmitRequest, maxBytes: options.Value.SubmitLimit);
        if (error is not null)
        {
            return error;
        }
        var idempotencyKey = body!.IdempotencyKey ?? request.Headers["Idempotency-Key"].FirstOrDefault();
        var errors = new Dictionary<string, string[]>();
        JobsApi.ValidatePayload(body.Payload, errors);
        JobsApi.ValidateIdempotencyKey(idempotencyKey, errors);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var result = await approvals.ResubmitAsync(Caller.From(user), id, body.Payload, idempotencyKey, cancellationToken);
        if (result.Outcome.Code == "policy_denied")
        {
            return Problems.Of(StatusCodes.Status403Forbidden, "policy_denied", result.Outcome.Detail!,
                new Dictionary<string, object?> { ["ruleId"] = result.RuleId });
        }
        return ApprovalsApi.ToResult(result.Outcome, "resubmitted");
    }

    public static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> Withdraw(
        string id, HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.WithdrawRequest, optional: true);
        if (error is not null)
        {
            return error;
        }
        if (body!.Reason is { Length: > 2000 })
        {
            return Problems.Invalid("reason", "At most 2000 characters.");
        }
        var outcome = await approvals.WithdrawAsync(Caller.From(user), id, body.Reason, cancellationToken);
        return ApprovalsApi.ToResult(outcome, "withdrawn");
    }

    public static async Task<Results<Ok<NotificationStatus>, ProblemHttpResult>> Notifications(
        string tenant, ClaimsPrincipal user, TenantAccess access, Notifier notifier) =>
        await access.CanReadAsync(Caller.From(user), tenant)
            ? TypedResults.Ok(await notifier.StatusAsync(tenant))
            : Problems.NotFound("tenant");
}
