using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Http.RateLimiting;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Bulk;

/// <summary>
/// <c>POST /api/v1/approvals/bulk</c>: one verdict and reason for many approvals, each decided on its own through the
/// single decision path (<see cref="BulkDecisions"/>). Bad input is a 400 naming the field and decides nothing.
/// Each item counts against the caller's request rate limit as one approve call would.
/// </summary>
public static class BulkApi
{
    public static IHostApplicationBuilder AddBulkDecisions(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<BulkOptions>().BindConfiguration(BulkOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<BulkDecisions>();
        return builder;
    }

    public static IEndpointRouteBuilder MapBulkDecisionsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/approvals/bulk", Decide).WithTags("Approvals").WithName("BulkDecide")
            .RequireAuthorization(AuthSetup.ApiPolicy).RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("Approve or reject many approvals with one reason; each item is decided on its own and answers its own status.");
        return routes;
    }

    public static async Task<Results<Ok<BulkDecisionResponse>, ValidationProblem, ProblemHttpResult>> Decide(
        HttpRequest request, ClaimsPrincipal user, BulkDecisions bulk, CallerRateLimiter limiter, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.BulkDecideRequest);
        if (error is not null)
        {
            return error;
        }
        var errors = Validate(body!, bulk.MaxItems, out var verdict, out var selection);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }

        var caller = Caller.From(user);
        IReadOnlyList<BulkTarget> targets;
        if (body!.Filter is { } filter)
        {
            var matches = await bulk.SelectAsync(caller, filter.Tenant!, selection!);
            if (matches is null)
            {
                return Problems.NotFound("tenant");
            }
            if (matches.Count > bulk.MaxItems)
            {
                return Problems.Invalid("filter",
                    $"Matches {matches.Count} pending approvals, more than {bulk.MaxItems} ({BulkOptions.Section}:{nameof(BulkOptions.MaxItems)}); narrow it.");
            }
            // Bound to what was selected: a job that changes before its turn answers 409 job_changed.
            targets = [.. matches.Select(a => new BulkTarget(a.Id, a.JobHash, null))];
        }
        else
        {
            targets = [.. body.Items!.Select(i => new BulkTarget(i!.Id!, i.JobHash, i.PolicySnapshot))];
        }

        // The call itself took one permit; each further item takes one more, so a bulk call is never a way past the limit.
        if (targets.Count > 1)
        {
            using var lease = limiter.AttemptAcquire(request.HttpContext, targets.Count - 1);
            if (!lease.IsAcquired)
            {
                var seconds = lease.TryGetMetadata(System.Threading.RateLimiting.MetadataName.RetryAfter, out var retryAfter)
                    ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))
                    : 1;
                request.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                return Problems.Of(StatusCodes.Status429TooManyRequests, "rate_limited",
                    $"Each of the {targets.Count} items counts as one request against this account's rate limit ({RateLimitOptions.Section}:{nameof(RateLimitOptions.PerAccount)}); nothing was decided. Retry after {seconds} s.",
                    new Dictionary<string, object?> { ["limit"] = $"{RateLimitOptions.Section}:{nameof(RateLimitOptions.PerAccount)}", ["retryAfter"] = seconds });
            }
        }

        var results = await bulk.DecideAsync(caller, verdict, body.Reason, targets, cancellationToken);
        var succeeded = results.Count(r => r.Succeeded);
        return TypedResults.Ok(new BulkDecisionResponse(verdict == Verdict.Approve ? "approve" : "reject", results.Count, succeeded,
            results.Count - succeeded, results));
    }

    private static Dictionary<string, string[]> Validate(BulkDecideRequest body, int maxItems, out Verdict verdict, out BulkSelection? selection)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        verdict = Verdict.Approve;
        selection = null;
        switch (body.Verdict)
        {
            case "approve":
                break;
            case "reject":
                verdict = Verdict.Reject;
                break;
            default:
                errors["verdict"] = ["One of approve, reject."];
                break;
        }
        if (body.Reason is { Length: > 2000 })
        {
            errors["reason"] = ["At most 2000 characters."];
        }
        if (body.Items is not null && body.Filter is not null)
        {
            errors["filter"] = ["Give items or a filter, not both."];
            return errors;
        }
        if (body.Items is null && body.Filter is null)
        {
            errors["items"] = ["Give the items to decide (or a filter)."];
            return errors;
        }
        var cap = $"{BulkOptions.Section}:{nameof(BulkOptions.MaxItems)}";
        if (body.Items is { } items)
        {
            if (items.Count == 0)
            {
                errors["items"] = ["At least one item."];
            }
            else if (items.Count > maxItems)
            {
                errors["items"] = [$"At most {maxItems} items ({cap}); this call has {items.Count}."];
            }
            else
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                for (var i = 0; i < items.Count; i++)
                {
                    var item = items[i];
                    if (item?.Id is not { Length: > 0 } id)
                    {
                        errors[$"items[{i}].id"] = ["Required."];
                        continue;
                    }
                    if (id.Length > 100)
                    {
                        errors[$"items[{i}].id"] = ["At most 100 characters."];
                    }
                    else if (!seen.Add(id))
                    {
                        errors[$"items[{i}].id"] = ["Listed twice."];
                    }
                    if (item.JobHash is not null && !IsSha256(item.JobHash))
                    {
                        errors[$"items[{i}].jobHash"] = ["A lowercase hex SHA-256 (64 characters)."];
                    }
                    if (item.PolicySnapshot is not null && !IsSha256(item.PolicySnapshot))
                    {
                        errors[$"items[{i}].policySnapshot"] = ["A lowercase hex SHA-256 (64 characters)."];
                    }
                }
            }
        }
        if (body.Filter is { } filter)
        {
            if (string.IsNullOrWhiteSpace(filter.Tenant))
            {
                errors["filter.tenant"] = ["Required."];
            }
            if (filter.Topic is { Length: > 200 })
            {
                errors["filter.topic"] = ["At most 200 characters."];
            }
            if (filter.Env is { Length: > 100 })
            {
                errors["filter.env"] = ["At most 100 characters."];
            }
            TimeSpan? olderThan = null;
            if (filter.OlderThan is not null)
            {
                if (DurationText.TryParse(filter.OlderThan, out var age))
                {
                    olderThan = age;
                }
                else
                {
                    errors["filter.olderThan"] = ["A duration such as 30m, 2h, 1d or PT2H."];
                }
            }
            if (filter.Risk is not null && !JobsApi.Priorities.Contains(filter.Risk))
            {
                errors["filter.risk"] = [$"One of {string.Join(", ", JobsApi.Priorities)} (the job's priority)."];
            }
            selection = new BulkSelection(filter.Topic, filter.Env, olderThan, filter.Risk);
        }
        return errors;
    }

    private static bool IsSha256(string value) =>
        value.Length == 64 && value.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
