using Microsoft.Extensions.Options;
using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary><c>POST /api/v1/jobs</c>: agents submit actions; the tenant's policy decides at once.</summary>
public static partial class JobsApi
{
    public static readonly IReadOnlyList<string> Priorities = ["low", "normal", "high", "critical"];

    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/jobs").WithTags("Jobs").RequireAuthorization(AuthSetup.AgentPolicy);
        group.MapPost("/", Submit)
            .WithName("SubmitJob")
            .WithSummary("Submit an action; the policy allows (200), denies (403), throttles (429) or parks it for a human (202).");
        return routes;
    }

    public static async Task<Results<Ok<SubmitJobResponse>, Accepted<SubmitJobResponse>, ValidationProblem, ProblemHttpResult>> Submit(
        HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, IOptions<ApprovalOptions> options, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.SubmitJobRequest, maxBytes: options.Value.SubmitLimit);
        if (error is not null)
        {
            return error;
        }
        var idempotencyKey = body!.IdempotencyKey ?? request.Headers["Idempotency-Key"].FirstOrDefault();
        var errors = Validate(body, idempotencyKey);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }

        var job = new JobRequest(body.Topic!, body.Env!, body.Channel, body.Priority ?? "normal", body.Payload.Clone());
        var outcome = await approvals.SubmitAsync(Caller.From(user), idempotencyKey, job, cancellationToken, body.RequestedBy);
        switch (outcome.Kind)
        {
            case SubmitKind.Allowed:
                var allowed = outcome.Job!;
                return TypedResults.Ok(new SubmitJobResponse
                {
                    JobId = allowed.Id,
                    Decision = "allow",
                    State = "allowed",
                    PolicySnapshot = allowed.PolicySnapshot,
                    JobHash = allowed.JobHash,
                    RuleId = allowed.RuleId,
                    Replayed = outcome.Replayed,
                });
            case SubmitKind.Parked:
                var approval = outcome.Approval!;
                return TypedResults.Accepted($"/api/v1/approvals/{approval.Id}", new SubmitJobResponse
                {
                    JobId = approval.JobId,
                    ApprovalId = approval.Id,
                    Decision = "require_human",
                    State = approval.State,
                    PolicySnapshot = approval.PolicySnapshot,
                    JobHash = approval.JobHash,
                    RuleId = approval.RuleId,
                    ExpiresAt = approval.ExpiresAt,
                    Replayed = outcome.Replayed,
                });
            case SubmitKind.Denied:
                return Problems.Of(StatusCodes.Status403Forbidden, "policy_denied",
                    $"The tenant's policy denies '{job.Topic}' (rule {outcome.RuleId ?? "(default)"}).",
                    new Dictionary<string, object?> { ["ruleId"] = outcome.RuleId, ["policySnapshot"] = outcome.Snapshot });
            case SubmitKind.Throttled:
                var seconds = Math.Max(1, (int)Math.Ceiling(outcome.RetryAfter!.Value.TotalSeconds));
                request.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                return Problems.Of(StatusCodes.Status429TooManyRequests, "policy_throttled",
                    $"The tenant's policy limits '{job.Topic}' (rule {outcome.RuleId}); retry in {seconds} s.",
                    new Dictionary<string, object?> { ["ruleId"] = outcome.RuleId, ["retryAfterSeconds"] = seconds });
            case SubmitKind.KeyReused:
                return Problems.Of(StatusCodes.Status409Conflict, "idempotency_key_reused", outcome.Detail!,
                    new Dictionary<string, object?> { ["field"] = "idempotencyKey" });
            default:
                return Problems.Of(StatusCodes.Status503ServiceUnavailable, "policy_unavailable", outcome.Detail ?? "Unavailable.");
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
    private static partial Regex Name();

    [GeneratedRegex("^[\\x21-\\x7E]{1,200}$")]
    private static partial Regex IdempotencyKeyPattern();

    internal static Dictionary<string, string[]> Validate(SubmitJobRequest body, string? idempotencyKey)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(body.Topic))
        {
            errors["topic"] = ["Required."];
        }
        else if (!Name().IsMatch(body.Topic))
        {
            errors["topic"] = ["Letters, digits and . _ : / - only, up to 128 characters."];
        }
        if (string.IsNullOrWhiteSpace(body.Env))
        {
            errors["env"] = ["Required."];
        }
        else if (!Name().IsMatch(body.Env))
        {
            errors["env"] = ["Letters, digits and . _ : / - only, up to 128 characters."];
        }
        if (body.Channel is not null && !Name().IsMatch(body.Channel))
        {
            errors["channel"] = ["Letters, digits and . _ : / - only, up to 128 characters."];
        }
        if (body.Priority is not null && !Priorities.Contains(body.Priority))
        {
            errors["priority"] = [$"One of {string.Join(", ", Priorities)}."];
        }
        ValidatePayload(body.Payload, errors);
        ValidateIdempotencyKey(idempotencyKey, errors);
        if (body.RequestedBy is not null && (body.RequestedBy.Length is 0 or > 256 || body.RequestedBy.Any(char.IsControl)))
        {
            errors["requestedBy"] = ["A user name, 1 to 256 characters."];
        }
        return errors;
    }

    /// <summary>A payload as the API takes it: a JSON object (its size is bounded by the body's, Approvals:MaxSubmitBytes).</summary>
    internal static void ValidatePayload(JsonElement payload, Dictionary<string, string[]> errors)
    {
        if (payload.ValueKind == JsonValueKind.Undefined)
        {
            errors["payload"] = ["Required (a JSON object)."];
        }
        else if (payload.ValueKind != JsonValueKind.Object)
        {
            errors["payload"] = ["Must be a JSON object."];
        }
    }

    internal static void ValidateIdempotencyKey(string? idempotencyKey, Dictionary<string, string[]> errors)
    {
        if (idempotencyKey is not null && !IdempotencyKeyPattern().IsMatch(idempotencyKey))
        {
            errors["idempotencyKey"] = ["1 to 200 printable ASCII characters, no spaces."];
        }
    }
}
