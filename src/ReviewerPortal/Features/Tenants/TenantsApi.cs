using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Tenants;

public sealed record TenantSettingsRequest
{
    /// <summary>Duration: <c>hh:mm:ss</c>, <c>d.hh:mm:ss</c>, ISO 8601 (<c>PT24H</c>) or <c>90m</c>/<c>24h</c>/<c>3d</c>.</summary>
    public string? ApprovalTtl { get; init; }
    public IReadOnlyList<string>? Approvers { get; init; }
    public string? DisplayName { get; init; }
}

public sealed record TenantSettingsResponse(string Tenant, string? DisplayName, string ApprovalTtl, long ApprovalTtlSeconds,
    IReadOnlyList<string> Approvers, string? Note = null);

public sealed record TenantSummary(string Tenant, string? DisplayName);

public sealed record TenantListResponse(IReadOnlyList<TenantSummary> Items);

/// <summary>Tenant settings (admin writes; readers of the tenant read).</summary>
public static class TenantsApi
{
    public static IEndpointRouteBuilder MapTenantsApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/tenants").WithTags("Tenants").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapGet("/", List).WithName("ListTenants").WithSummary("The tenants the caller can read.");
        group.MapGet("/{tenant}/settings", GetSettings).WithName("GetTenantSettings");
        group.MapPut("/{tenant}/settings", PutSettings).WithName("PutTenantSettings").RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: approval TTL (1 minute to 30 days), approvers, display name. Pending approvals keep their deadline.");
        return routes;
    }

    public static async Task<Ok<TenantListResponse>> List(ClaimsPrincipal user, TenantAccess access, TenantStore tenants)
    {
        var items = new List<TenantSummary>();
        foreach (var tenant in await access.ReadableTenantsAsync(Caller.From(user)))
        {
            items.Add(new TenantSummary(tenant, (await tenants.GetSettingsAsync(tenant))?.DisplayName));
        }
        return TypedResults.Ok(new TenantListResponse(items));
    }

    public static async Task<Results<Ok<TenantSettingsResponse>, ProblemHttpResult>> GetSettings(
        string tenant, ClaimsPrincipal user, TenantAccess access, TenantStore tenants)
    {
        if (!await access.CanReadAsync(Caller.From(user), tenant) || await tenants.GetSettingsAsync(tenant) is not { } settings)
        {
            return Problems.NotFound("tenant");
        }
        return TypedResults.Ok(ToResponse(settings));
    }

    public static async Task<Results<Ok<TenantSettingsResponse>, ValidationProblem, ProblemHttpResult>> PutSettings(
        string tenant, HttpRequest request, ClaimsPrincipal user, TenantStore tenants, AuditLog audit, CancellationToken cancellationToken)
    {
        var current = await tenants.GetSettingsAsync(tenant);
        if (current is null)
        {
            return Problems.NotFound("tenant");
        }
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.TenantSettingsRequest);
        if (error is not null)
        {
            return error;
        }
        var updated = current;
        if (body!.ApprovalTtl is not null)
        {
            if (!DurationText.TryParse(body.ApprovalTtl, out var ttl))
            {
                return Problems.Invalid("approvalTtl", "A duration such as 24:00:00, PT24H or 72h.");
            }
            if (ttl < TenantSettings.MinApprovalTtl || ttl > TenantSettings.MaxApprovalTtl)
            {
                return Problems.Invalid("approvalTtl", "From 1 minute to 30 days.");
            }
            updated = updated with { ApprovalTtl = ttl };
        }
        if (body.Approvers is not null)
        {
            if (body.Approvers.Count > 200 || body.Approvers.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > 256 || a.Contains(',')))
            {
                return Problems.Invalid("approvers", "Up to 200 user names, none empty or containing a comma.");
            }
            updated = updated with { Approvers = [.. body.Approvers.Select(a => a.Trim()).Distinct(StringComparer.Ordinal)] };
        }
        if (body.DisplayName is not null)
        {
            if (body.DisplayName.Length > 200)
            {
                return Problems.Invalid("displayName", "At most 200 characters.");
            }
            updated = updated with { DisplayName = body.DisplayName };
        }

        var entry = audit.NewEntry(tenant, Caller.From(user).Actor, "settings_changed");
        entry.Details = $"approvalTtl {DurationText.Format(current.ApprovalTtl)} → {DurationText.Format(updated.ApprovalTtl)}; " +
                        $"approvers [{string.Join(',', current.Approvers)}] → [{string.Join(',', updated.Approvers)}]";
        await audit.RecordAsync(entry, async json =>
        {
            await tenants.UpdateAsync(updated, json);
            return (true, true);
        }, cancellationToken);
        var note = updated.ApprovalTtl != current.ApprovalTtl
            ? "The new TTL applies to approvals submitted from now on; pending approvals keep the deadline they were given."
            : null;
        return TypedResults.Ok(ToResponse(updated) with { Note = note });
    }

    private static TenantSettingsResponse ToResponse(TenantSettings s) =>
        new(s.Tenant, s.DisplayName, DurationText.Format(s.ApprovalTtl), (long)s.ApprovalTtl.TotalSeconds, s.Approvers);
}
