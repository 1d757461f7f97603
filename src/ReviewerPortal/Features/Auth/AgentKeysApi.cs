using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Auth;

public sealed record AgentKeyItem(int Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

public sealed record AgentKeyList(string Tenant, IReadOnlyList<AgentKeyItem> Items);

public sealed record CreateAgentKeyRequest(string? Name);

/// <summary>The new key's secret, shown this once.</summary>
public sealed record CreatedAgentKey(int Id, string Name, string Key);

/// <summary><c>/api/v1/tenants/{tenant}/agent-keys</c>: the admin page's key management as an API (admins only, audited).</summary>
public static class AgentKeysApi
{
    public static IEndpointRouteBuilder MapAgentKeysApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/tenants/{tenant}/agent-keys").WithTags("Tenants").RequireAuthorization(AuthSetup.AdminPolicy);
        group.MapGet("/", List).WithName("ListAgentKeys").WithSummary("The tenant's agent keys (never their secrets).");
        group.MapPost("/", Create).WithName("CreateAgentKey").WithSummary("Creates an agent key; its secret is in this answer only.");
        group.MapDelete("/{id:int}", Revoke).WithName("RevokeAgentKey")
            .WithSummary("Revokes an agent key: it stops working on every instance at once.");
        return routes;
    }

    public static async Task<Results<Ok<AgentKeyList>, ProblemHttpResult>> List(
        string tenant, TenantStore tenants, AgentKeys keys, CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        var items = await keys.ListAsync(tenant, cancellationToken);
        return TypedResults.Ok(new AgentKeyList(tenant, [.. items.Select(k => new AgentKeyItem(k.Id, k.Name, k.Prefix, k.CreatedAt, k.RevokedAt))]));
    }

    public static async Task<Results<Created<CreatedAgentKey>, ValidationProblem, ProblemHttpResult>> Create(
        string tenant, HttpRequest request, ClaimsPrincipal user, TenantStore tenants, AgentKeys keys, CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.CreateAgentKeyRequest);
        if (error is not null)
        {
            return error;
        }
        if (body!.Name?.Trim() is not { Length: > 0 and <= 100 })
        {
            return Problems.Invalid("name", "1 to 100 characters.");
        }
        var (key, secret) = await keys.CreateAsync(tenant, body.Name, Caller.From(user), cancellationToken);
        return TypedResults.Created($"/api/v1/tenants/{tenant}/agent-keys/{key.Id}", new CreatedAgentKey(key.Id, key.Name, secret));
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Revoke(
        string tenant, int id, ClaimsPrincipal user, TenantStore tenants, AgentKeys keys, CancellationToken cancellationToken) =>
        await tenants.ExistsAsync(tenant) && await keys.RevokeAsync(tenant, id, Caller.From(user), cancellationToken) is not null
            ? TypedResults.NoContent()
            : Problems.NotFound("agent key");
}
