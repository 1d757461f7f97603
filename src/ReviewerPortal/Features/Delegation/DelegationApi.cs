using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Delegation;

public sealed record DelegationResponse(string User, string DelegateTo, DateTimeOffset From, DateTimeOffset Until, bool Active,
    DateTimeOffset SetAt, string SetBy)
{
    public static DelegationResponse Of(Delegation d, DateTimeOffset now) => new(d.User, d.DelegateTo, d.From, d.Until, d.ActiveAt(now), d.SetAt, d.SetBy);
}

/// <summary>The caller's own delegation (null when none), and the people away now who named the caller.</summary>
public sealed record MyDelegationResponse(string User, DelegationResponse? Delegation, IReadOnlyList<DelegationResponse> DecidingFor);

public sealed record DelegationListResponse(IReadOnlyList<DelegationResponse> Items);

/// <summary>
/// <c>/api/v1/me/delegation</c>: an account's out-of-office delegation; <c>/api/v1/delegations</c>: every delegation,
/// for admins, who may end any.
/// </summary>
public static class DelegationApi
{
    public static IHostApplicationBuilder AddDelegation(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<DelegationOptions>().BindConfiguration(DelegationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<DelegationStore>();
        builder.Services.AddSingleton<DelegationService>();
        return builder;
    }

    public static IEndpointRouteBuilder MapDelegationApi(this IEndpointRouteBuilder routes)
    {
        var me = routes.MapGroup("/api/v1/me/delegation").WithTags("Delegation").RequireAuthorization(AuthSetup.AccountPolicy);
        me.MapGet("/", GetMine).WithName("GetMyDelegation").WithSummary("Your out-of-office delegation and whom you decide for.");
        me.MapPut("/", PutMine).WithName("SetMyDelegation").WithSummary("Sets your out-of-office delegation (replaces any other).");
        me.MapDelete("/", EndMine).WithName("EndMyDelegation").WithSummary("Ends your delegation: you are back.");
        var admin = routes.MapGroup("/api/v1/delegations").WithTags("Delegation").RequireAuthorization(AuthSetup.AdminPolicy);
        admin.MapGet("/", List).WithName("ListDelegations").WithSummary("Admin: every current and planned delegation.");
        admin.MapDelete("/{user}", End).WithName("EndDelegation").WithSummary("Admin: ends an account's delegation.");
        return routes;
    }

    public static async Task<Ok<MyDelegationResponse>> GetMine(ClaimsPrincipal principal, DelegationStore store, TimeProvider time)
    {
        var caller = Caller.From(principal);
        var now = time.GetUtcNow();
        var mine = await store.GetAsync(caller.Name);
        var mineLive = mine is not null && mine.Until > now ? DelegationResponse.Of(mine, now) : null;
        var forOthers = await store.AwayForAsync(caller.Name);
        return TypedResults.Ok(new MyDelegationResponse(caller.Name, mineLive, [.. forOthers.Select(d => DelegationResponse.Of(d, now))]));
    }

    public static async Task<Results<Ok<DelegationResponse>, ValidationProblem, ProblemHttpResult>> PutMine(
        HttpRequest request, ClaimsPrincipal principal, DelegationService delegations, TimeProvider time, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal);
        if (!caller.IsReviewer)
        {
            return Problems.Of(StatusCodes.Status403Forbidden, "not_a_reviewer",
                $"'{caller.Name}' decides nothing (not a reviewer), so there is nothing to delegate.");
        }
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.DelegationRequest);
        if (error is not null)
        {
            return error;
        }
        var (delegation, errors) = await delegations.SetAsync(caller, body!, cancellationToken);
        return errors is not null ? Problems.Invalid(errors) : TypedResults.Ok(DelegationResponse.Of(delegation!, time.GetUtcNow()));
    }

    public static async Task<NoContent> EndMine(ClaimsPrincipal principal, DelegationService delegations, CancellationToken cancellationToken)
    {
        var caller = Caller.From(principal);
        await delegations.EndAsync(caller.Name, caller, cancellationToken);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<DelegationListResponse>> List(DelegationStore store, TimeProvider time)
    {
        var now = time.GetUtcNow();
        return TypedResults.Ok(new DelegationListResponse([.. (await store.ListAsync()).Select(d => DelegationResponse.Of(d, now))]));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> End(string user, ClaimsPrincipal principal, DelegationService delegations,
        CancellationToken cancellationToken) =>
        await delegations.EndAsync(user, Caller.From(principal), cancellationToken) is not null
            ? TypedResults.NoContent()
            : Problems.NotFound("delegation");
}
