using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Audit;

public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? NextAfter);

/// <summary>The audit history, for the tenant's reviewers, on-call and admins (not agents).</summary>
public static class AuditApi
{
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/audit").WithTags("Audit").RequireAuthorization(AuthSetup.AccountPolicy);
        group.MapGet("/", Query).WithName("QueryAudit")
            .WithSummary("Audit entries, oldest first, filtered by tenant, approval, actor, action and time; paged by 'after'.");
        group.MapGet("/verify", Verify).WithName("VerifyAudit").RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: re-compute a tenant's hash chain and report the first entry that does not match.");
        return routes;
    }

    public static async Task<Results<Ok<AuditPage>, ValidationProblem, ProblemHttpResult>> Query(
        ClaimsPrincipal user, TenantAccess access, IApprovalStore store, AppDbContext db, CancellationToken cancellationToken,
        string? tenant = null, string? approvalId = null, string? actor = null, string? action = null,
        DateTimeOffset? from = null, DateTimeOffset? to = null, long? after = null, int? limit = null)
    {
        var caller = Caller.From(user);
        if (limit is < 1 or > 500)
        {
            return Problems.Invalid("limit", "From 1 to 500.");
        }
        if (tenant is null && approvalId is not null)
        {
            tenant = await store.FindTenantAsync(approvalId);
        }
        if (tenant is null)
        {
            var readable = await access.ReadableTenantsAsync(caller);
            if (readable.Count != 1)
            {
                return Problems.Invalid("tenant", "Name the tenant (or an approvalId).");
            }
            tenant = readable[0];
        }
        if (!await access.CanReadAsync(caller, tenant))
        {
            return Problems.NotFound(approvalId is null ? "tenant" : "approval");
        }

        var query = db.AuditEntries.AsNoTracking().Where(e => e.Tenant == tenant);
        if (approvalId is not null)
        {
            query = query.Where(e => e.ApprovalId == approvalId);
        }
        if (actor is not null)
        {
            query = query.Where(e => e.Actor == actor);
        }
        if (action is not null)
        {
            query = query.Where(e => e.Action == action);
        }
        if (from is not null)
        {
            query = query.Where(e => e.At >= from.Value);
        }
        if (to is not null)
        {
            query = query.Where(e => e.At < to.Value);
        }
        if (after is not null)
        {
            query = query.Where(e => e.Sequence > after.Value);
        }
        var take = limit ?? 100;
        var items = await query.OrderBy(e => e.Sequence).Take(take + 1).ToListAsync(cancellationToken);
        long? next = items.Count > take ? items[take - 1].Sequence : null;
        return TypedResults.Ok(new AuditPage(items.Take(take).ToList(), next));
    }

    public static async Task<Results<Ok<AuditVerification>, ValidationProblem>> Verify(
        string? tenant, AuditLog audit, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(tenant))
        {
            return Problems.Invalid("tenant", "Required.");
        }
        return TypedResults.Ok(await audit.VerifyAsync(tenant, cancellationToken));
    }
}
