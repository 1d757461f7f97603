using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Cases;

/// <summary><c>POST /api/v1/cases</c>: an agent opens a compliance case that asks for documents.</summary>
public sealed record OpenCaseRequest
{
    public string? Subject { get; init; }

    /// <summary>The documents the first iteration asks for.</summary>
    public IReadOnlyList<string>? Documents { get; init; }

    /// <summary>At most this many document → review loops (default 5).</summary>
    public int? MaxIterations { get; init; }

    /// <summary>How long the case may run in all (default 60 days); when it runs out the case is escalated.</summary>
    public string? Window { get; init; }

    /// <summary>How long each document request waits (default 14 days).</summary>
    public string? DocumentDeadline { get; init; }

    /// <summary><c>reject</c> (default) or <c>escalate</c> when documents do not come in time.</summary>
    public string? OnDocumentTimeout { get; init; }
    public string? IdempotencyKey { get; init; }
}

public sealed record CaseDocumentsRequest
{
    /// <summary>The documents (a JSON object: names, references, hashes).</summary>
    public JsonElement Documents { get; init; }
    public string? Note { get; init; }
}

public sealed record CaseDecisionRequest
{
    /// <summary><c>approve</c>, <c>reject</c>, <c>escalate</c> or <c>request_documents</c>.</summary>
    public string? Decision { get; init; }
    public string? Reason { get; init; }

    /// <summary>With <c>request_documents</c>: what the next iteration asks for.</summary>
    public IReadOnlyList<string>? Documents { get; init; }
}

public sealed record CaseResponse(string Result, ComplianceCase Case);

public sealed record CaseListResponse(string Tenant, IReadOnlyList<ComplianceCase> Items);

public static class CasesApi
{
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromDays(60);
    public static readonly TimeSpan DefaultDocumentDeadline = TimeSpan.FromDays(14);

    public static IEndpointRouteBuilder MapCasesApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/cases").WithTags("Cases").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapPost("/", Open).WithName("OpenCase").RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("Open a compliance case: documents requested → submitted → reviewer decision, looped up to N times within a window.");
        group.MapGet("/", List).WithName("ListCases").WithSummary("A tenant's cases, newest first.");
        group.MapGet("/{id}", Get).WithName("GetCase").WithSummary("The case's state, iterations, deadlines and outcome.");
        group.MapPost("/{id}/documents", Documents).WithName("SubmitCaseDocuments").RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("Hand in the requested documents; the case goes to review.");
        group.MapPost("/{id}/decision", Decide).WithName("DecideCase").RequireAuthorization(AuthSetup.AccountPolicy)
            .WithSummary("approve, reject, escalate, or request_documents (the next iteration).");
        return routes;
    }

    public static async Task<Results<Ok<CaseResponse>, Created<CaseResponse>, ValidationProblem, ProblemHttpResult>> Open(
        HttpRequest request, ClaimsPrincipal user, CaseService cases, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.OpenCaseRequest);
        if (error is not null)
        {
            return error;
        }
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(body!.Subject) || body.Subject.Length > 500)
        {
            errors["subject"] = ["Required, at most 500 characters."];
        }
        ValidateDocuments(body.Documents, "documents", errors);
        if (body.MaxIterations is < 1 or > 50)
        {
            errors["maxIterations"] = ["From 1 to 50."];
        }
        var window = Duration(body.Window, "window", DefaultWindow, TimeSpan.FromMinutes(1), TimeSpan.FromDays(730), errors);
        var deadline = Duration(body.DocumentDeadline, "documentDeadline", DefaultDocumentDeadline, TimeSpan.FromSeconds(10), TimeSpan.FromDays(365), errors);
        if (body.OnDocumentTimeout is not (null or TimeoutOutcomes.Reject or TimeoutOutcomes.Escalate))
        {
            errors["onDocumentTimeout"] = ["One of reject, escalate."];
        }
        var idempotencyKey = body.IdempotencyKey ?? request.Headers["Idempotency-Key"].FirstOrDefault();
        JobsApi.ValidateIdempotencyKey(idempotencyKey, errors);
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        var outcome = await cases.OpenAsync(Caller.From(user), new OpenCaseCommand(body.Subject!.Trim(), body.Documents!, body.MaxIterations ?? 5,
            window, deadline, body.OnDocumentTimeout ?? TimeoutOutcomes.Reject, idempotencyKey), cancellationToken);
        return outcome.Kind switch
        {
            Outcome.Ok => TypedResults.Created($"/api/v1/cases/{outcome.Case!.Id}", new CaseResponse("opened", outcome.Case)),
            Outcome.AlreadyDone => TypedResults.Ok(new CaseResponse(outcome.Code!, outcome.Case!)),
            _ => ToProblem(outcome),
        };
    }

    public static async Task<Results<Ok<CaseListResponse>, ValidationProblem, ProblemHttpResult>> List(
        ClaimsPrincipal user, CaseService cases, TenantAccess access, string? tenant = null, int? limit = null)
    {
        var caller = Caller.From(user);
        if (limit is < 1 or > 500)
        {
            return Problems.Invalid("limit", "From 1 to 500.");
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
        var items = await cases.ListAsync(caller, tenant, limit ?? 100);
        return items is null ? Problems.NotFound("tenant") : TypedResults.Ok(new CaseListResponse(tenant, items));
    }

    public static async Task<Results<Ok<ComplianceCase>, ProblemHttpResult>> Get(string id, ClaimsPrincipal user, CaseService cases) =>
        await cases.GetAsync(Caller.From(user), id) is { } c ? TypedResults.Ok(c) : Problems.NotFound("case");

    public static async Task<Results<Ok<CaseResponse>, ValidationProblem, ProblemHttpResult>> Documents(
        string id, HttpRequest request, ClaimsPrincipal user, CaseService cases, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.CaseDocumentsRequest);
        if (error is not null)
        {
            return error;
        }
        var errors = new Dictionary<string, string[]>();
        if (body!.Documents.ValueKind != JsonValueKind.Object)
        {
            errors["documents"] = ["Required: a JSON object describing the documents."];
        }
        else if (body.Documents.GetRawText().Length > 64 * 1024)
        {
            errors["documents"] = ["At most 64 KiB."];
        }
        if (body.Note is { Length: > 2000 })
        {
            errors["note"] = ["At most 2000 characters."];
        }
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        return ToResult(await cases.SubmitDocumentsAsync(Caller.From(user), id, body.Documents, body.Note, cancellationToken));
    }

    public static async Task<Results<Ok<CaseResponse>, ValidationProblem, ProblemHttpResult>> Decide(
        string id, HttpRequest request, ClaimsPrincipal user, CaseService cases, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.CaseDecisionRequest);
        if (error is not null)
        {
            return error;
        }
        var errors = new Dictionary<string, string[]>();
        if (!CaseDecisions.All.Contains(body!.Decision))
        {
            errors["decision"] = [$"One of {string.Join(", ", CaseDecisions.All)}."];
        }
        if (body.Reason is { Length: > 2000 })
        {
            errors["reason"] = ["At most 2000 characters."];
        }
        if (body.Decision == CaseDecisions.RequestDocuments)
        {
            ValidateDocuments(body.Documents, "documents", errors);
        }
        else if (body.Documents is not null)
        {
            errors["documents"] = ["Only with request_documents."];
        }
        if (errors.Count > 0)
        {
            return Problems.Invalid(errors);
        }
        return ToResult(await cases.DecideAsync(Caller.From(user), id, body.Decision!, body.Reason, body.Documents, cancellationToken));
    }

    private static void ValidateDocuments(IReadOnlyList<string>? documents, string field, Dictionary<string, string[]> errors)
    {
        if (documents is not { Count: > 0 and <= 50 } || documents.Any(d => string.IsNullOrWhiteSpace(d) || d.Length > 200))
        {
            errors[field] = ["1 to 50 document names, each 1 to 200 characters."];
        }
    }

    private static TimeSpan Duration(string? text, string field, TimeSpan fallback, TimeSpan min, TimeSpan max, Dictionary<string, string[]> errors)
    {
        if (text is null)
        {
            return fallback;
        }
        if (!DurationText.TryParse(text, out var value) || value < min || value > max)
        {
            errors[field] = [DurationText.Problem(text, min, max)];
        }
        return value;
    }

    private static Results<Ok<CaseResponse>, ValidationProblem, ProblemHttpResult> ToResult(CaseOutcome outcome) =>
        outcome.Kind == Outcome.Ok ? TypedResults.Ok(new CaseResponse(outcome.Code!, outcome.Case!)) : ToProblem(outcome);

    private static ProblemHttpResult ToProblem(CaseOutcome outcome) => outcome.Kind switch
    {
        Outcome.NotFound => Problems.NotFound("case"),
        Outcome.Forbidden => Problems.Of(StatusCodes.Status403Forbidden, outcome.Code!, outcome.Detail!),
        Outcome.Locked => Problems.Of(StatusCodes.Status423Locked, outcome.Code!, outcome.Detail!),
        Outcome.Conflict => Problems.Of(StatusCodes.Status409Conflict, outcome.Code!, outcome.Detail ?? $"The case is {outcome.Case?.State}.",
            new Dictionary<string, object?> { ["state"] = outcome.Case?.State }),
        _ => Problems.Of(StatusCodes.Status503ServiceUnavailable, outcome.Code ?? "unavailable", outcome.Detail ?? "Unavailable."),
    };
}
