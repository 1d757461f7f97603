using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Dispatch;

public sealed record JobResultRequest
{
    /// <summary><c>completed</c> or <c>failed</c>.</summary>
    public string? Status { get; init; }
    public string? Detail { get; init; }
}

public sealed record JobResultResponse(string JobId, string Result);

public sealed record SideEffectRequest
{
    public string? ApprovalId { get; init; }
    public string? ActionId { get; init; }
    public JsonElement Result { get; init; }
    public string? JobHash { get; init; }
    public string? PolicySnapshot { get; init; }
}

public sealed record SideEffectResponse(string ApprovalId, string ActionId, JsonElement Result, bool FirstTime);

public sealed record JobStatusResponse(string JobId, string? ApprovalId, string State, string Dispatch, bool ApprovalGranted);

public sealed record StatsResponse(string Tenant, IReadOnlyDictionary<string, long> Counters);

/// <summary>The worker's side of the contract: results, side-effect idempotency, and the control-plane counters.</summary>
public static class DispatchApi
{
    public static IEndpointRouteBuilder MapDispatchApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/jobs/{id}/result", Result).WithTags("Jobs").WithName("JobResult")
            .RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("A worker reports a dispatched job completed or failed (stops its replay). Idempotent.");
        routes.MapGet("/api/v1/jobs/{id}", Job).WithTags("Jobs").WithName("GetJob")
            .RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("A job's state and its publication: none, pending, dispatched, completed, failed, stuck.");
        routes.MapPost("/api/v1/side-effects", SideEffect).WithTags("Jobs").WithName("RecordSideEffect")
            .RequireAuthorization(AuthSetup.AgentPolicy)
            .WithSummary("Records a side effect's result once per (approval, action); the same key again returns the first result.");
        routes.MapGet("/api/v1/stats", Stats).WithTags("Approvals").WithName("Stats")
            .RequireAuthorization(AuthSetup.ApiPolicy)
            .WithSummary("already_approved, snapshot_mismatch, job_mismatch, replayed_approved, dispatch_failures for a tenant.");
        return routes;
    }

    public static async Task<Results<Ok<JobResultResponse>, ValidationProblem, ProblemHttpResult>> Result(
        string id, HttpRequest request, ClaimsPrincipal user, Dispatcher dispatcher, IApprovalStore store, RedisConnection redis,
        CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, Infrastructure.Json.AppJsonContext.Default.JobResultRequest);
        if (error is not null)
        {
            return error;
        }
        if (body!.Status is not ("completed" or "failed"))
        {
            return Problems.Invalid("status", "completed or failed.");
        }
        if (body.Detail is { Length: > 2000 })
        {
            return Problems.Invalid("detail", "At most 2000 characters.");
        }
        var caller = Caller.From(user);
        if (await SupersededByAsync(caller.AgentTenant!, id, store, redis) is { } current)
        {
            // A version sent back and replaced was never released: its result must not complete the version that was.
            return Problems.Of(StatusCodes.Status409Conflict, "superseded",
                $"Job {id} is an earlier version of approval {current.Id}, replaced by job {current.JobId}; report on that one.");
        }
        var result = await dispatcher.RecordResultAsync(caller.AgentTenant!, id, body.Status == "completed", body.Detail, caller.Actor, cancellationToken);
        return result switch
        {
            "not_found" => Problems.NotFound("job"),
            "ok" => TypedResults.Ok(new JobResultResponse(id, body.Status)),
            _ when result.StartsWith("already_", StringComparison.Ordinal) => TypedResults.Ok(new JobResultResponse(id, result)),
            _ => Problems.Of(StatusCodes.Status409Conflict, "not_dispatched", $"The job is not dispatched ({result["state_".Length..]})."),
        };
    }

    public static async Task<Results<Ok<JobStatusResponse>, ProblemHttpResult>> Job(
        string id, ClaimsPrincipal user, IApprovalStore store, RedisConnection redis)
    {
        var tenant = Caller.From(user).AgentTenant!;
        var member = (string?)await redis.Database.HashGetAsync(RedisKeys.JobIndex(tenant), id);
        if (DispatchMember.ApprovalIdOf(member) is { } approvalId && await store.GetApprovalAsync(tenant, approvalId) is { } approval)
        {
            return approval.JobId == id
                ? TypedResults.Ok(new JobStatusResponse(id, approval.Id, approval.State, approval.Dispatch, approval.ApprovalGranted))
                : TypedResults.Ok(new JobStatusResponse(id, approval.Id, "superseded", "none", false));
        }
        if (DispatchMember.JobIdOf(member) is not null && await store.GetJobAsync(tenant, id) is { } job)
        {
            return TypedResults.Ok(new JobStatusResponse(id, null, "allowed", job.Dispatch, false));
        }
        return Problems.NotFound("job");
    }

    /// <summary>The approval whose later version replaced job <paramref name="jobId"/>, or null when it is current (or no approval's).</summary>
    private static async Task<Approval?> SupersededByAsync(string tenant, string jobId, IApprovalStore store, RedisConnection redis)
    {
        var member = (string?)await redis.Database.HashGetAsync(RedisKeys.JobIndex(tenant), jobId);
        return DispatchMember.ApprovalIdOf(member) is { } approvalId
               && await store.GetApprovalAsync(tenant, approvalId) is { } approval && approval.JobId != jobId
            ? approval
            : null;
    }

    public static async Task<Results<Ok<SideEffectResponse>, Created<SideEffectResponse>, ValidationProblem, ProblemHttpResult>> SideEffect(
        HttpRequest request, ClaimsPrincipal user, ApprovalService approvals, RedisConnection redis, CancellationToken cancellationToken)
    {
        var (body, error) = await JsonBody.ReadAsync(request, Infrastructure.Json.AppJsonContext.Default.SideEffectRequest);
        if (error is not null)
        {
            return error;
        }
        if (string.IsNullOrWhiteSpace(body!.ApprovalId))
        {
            return Problems.Invalid("approvalId", "Required.");
        }
        if (body.ActionId is not { Length: > 0 and <= 200 } actionId || actionId.Any(char.IsWhiteSpace))
        {
            return Problems.Invalid("actionId", "1 to 200 characters, no spaces.");
        }
        if (body.Result.ValueKind == JsonValueKind.Undefined)
        {
            return Problems.Invalid("result", "Required (any JSON value).");
        }
        var approval = await approvals.GetAsync(Caller.From(user), body.ApprovalId);
        if (approval is null)
        {
            return Problems.NotFound();
        }
        if (approval.State != ApprovalStates.Approved)
        {
            return Problems.Of(StatusCodes.Status409Conflict, approval.State, $"The approval is {approval.State}, not approved: no side effect may run.");
        }
        if (body.JobHash is not null && body.JobHash != approval.JobHash)
        {
            return Problems.Of(StatusCodes.Status409Conflict, "job_changed", "The job hash does not match the approved job.");
        }
        if (body.PolicySnapshot is not null && body.PolicySnapshot != approval.PolicySnapshot)
        {
            return Problems.Of(StatusCodes.Status409Conflict, "snapshot_changed", "The policy snapshot does not match the approval's.");
        }
        var key = RedisKeys.SideEffect(approval.Tenant, approval.Id, actionId);
        var raw = body.Result.GetRawText();
        if (await redis.Database.StringSetAsync(key, raw, TimeSpan.FromDays(90), When.NotExists))
        {
            return TypedResults.Created($"/api/v1/side-effects/{approval.Id}/{actionId}", new SideEffectResponse(approval.Id, actionId, body.Result, true));
        }
        using var stored = JsonDocument.Parse((string)(await redis.Database.StringGetAsync(key))!);
        return TypedResults.Ok(new SideEffectResponse(approval.Id, actionId, stored.RootElement.Clone(), false));
    }

    public static async Task<Results<Ok<StatsResponse>, ValidationProblem, ProblemHttpResult>> Stats(
        ClaimsPrincipal user, TenantAccess access, Counters counters, string? tenant = null)
    {
        var caller = Caller.From(user);
        tenant ??= caller.AgentTenant;
        if (tenant is null)
        {
            return Problems.Invalid("tenant", "Required.");
        }
        if (!await access.CanReadAsync(caller, tenant))
        {
            return Problems.NotFound("tenant");
        }
        return TypedResults.Ok(new StatsResponse(tenant, await counters.GetAsync(tenant)));
    }
}
