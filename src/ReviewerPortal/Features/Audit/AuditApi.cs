using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Audit;

public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? NextAfter);

/// <summary>The audit filters shared by the API, the export and the portal page.</summary>
public sealed record AuditFilter(string Tenant, string? ApprovalId = null, string? Actor = null, string? Action = null,
    DateTimeOffset? From = null, DateTimeOffset? To = null)
{
    public IQueryable<AuditEntry> Apply(IQueryable<AuditEntry> query)
    {
        query = query.Where(e => e.Tenant == Tenant);
        if (!string.IsNullOrWhiteSpace(ApprovalId))
        {
            query = query.Where(e => e.ApprovalId == ApprovalId);
        }
        if (!string.IsNullOrWhiteSpace(Actor))
        {
            query = query.Where(e => e.Actor == Actor);
        }
        if (!string.IsNullOrWhiteSpace(Action))
        {
            query = query.Where(e => e.Action == Action);
        }
        if (From is { } from)
        {
            query = query.Where(e => e.At >= from);
        }
        if (To is { } to)
        {
            query = query.Where(e => e.At < to);
        }
        return query;
    }
}

public static class AuditCsv
{
    public static string Write(IEnumerable<AuditEntry> rows)
    {
        var b = new System.Text.StringBuilder("sequence,at,tenant,approvalId,jobId,actor,action,fromState,toState,reason,policySnapshot,jobHash,details,hash,approvalSeq\n");
        foreach (var e in rows)
        {
            b.AppendJoin(',', new[]
            {
                e.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), e.At.ToString("O"), e.Tenant, e.ApprovalId, e.JobId,
                e.Actor, e.Action, e.FromState, e.ToState, e.Reason, e.PolicySnapshot, e.JobHash, e.Details, e.Hash,
                e.ApprovalSeq?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }.Select(Field)).Append('\n');
        }
        return b.ToString();
    }

    private static string Field(string? value)
    {
        value ??= "";
        // Quote when needed, and defuse spreadsheet formulas (a tab or carriage return first starts one too).
        if (value.Length > 0 && "=+-@\t\r".Contains(value[0]))
        {
            value = "'" + value;
        }
        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }
}

/// <summary>The audit history, for the tenant's reviewers, on-call and admins (not agents).</summary>
public static class AuditApi
{
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/audit").WithTags("Audit").RequireAuthorization(AuthSetup.AccountPolicy);
        group.MapGet("/", Query).WithName("QueryAudit")
            .WithSummary("Audit entries, oldest first, filtered by tenant, approval, actor, action and time; paged by 'after'.");
        routes.MapGet("/portal/audit/export", Export).WithName("ExportAudit").RequireAuthorization().ExcludeFromDescription();
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

        var query = new AuditFilter(tenant, approvalId, actor, action, from, to).Apply(db.AuditEntries.AsNoTracking());
        if (after is not null)
        {
            query = query.Where(e => e.Sequence > after.Value);
        }
        var take = limit ?? 100;
        var items = await query.OrderBy(e => e.Sequence).Take(take + 1).ToListAsync(cancellationToken);
        long? next = items.Count > take ? items[take - 1].Sequence : null;
        return TypedResults.Ok(new AuditPage(items.Take(take).ToList(), next));
    }

    /// <summary>The portal's export (cookie-signed-in, GET only): the filtered history as CSV or JSON.</summary>
    public static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Export(
        ClaimsPrincipal user, TenantAccess access, AppDbContext db, TimeProvider time, CancellationToken cancellationToken,
        string tenant, string? approvalId = null, string? actor = null, string? action = null,
        DateTimeOffset? from = null, DateTimeOffset? to = null, string format = "csv")
    {
        var caller = Caller.From(user);
        if (caller.IsAgent || !await access.CanReadAsync(caller, tenant))
        {
            return Problems.NotFound("tenant");
        }
        var rows = await new AuditFilter(tenant, approvalId, actor, action, from, to).Apply(db.AuditEntries.AsNoTracking())
            .OrderBy(e => e.Sequence).Take(100_000).ToListAsync(cancellationToken);
        var stamp = time.GetUtcNow().ToString("yyyyMMdd-HHmmss");
        return format == "json"
            ? TypedResults.File(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(rows, Infrastructure.Json.AppJsonContext.Default.ListAuditEntry),
                "application/json", $"audit-{tenant}-{stamp}.json")
            : TypedResults.File(System.Text.Encoding.UTF8.GetBytes(AuditCsv.Write(rows)), "text/csv", $"audit-{tenant}-{stamp}.csv");
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
