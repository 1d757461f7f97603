using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Migration;

/// <summary>Moving a tenant's work in flight to another deployment: export here, import there (admin).</summary>
public static class MigrationApi
{
    public static IHostApplicationBuilder AddMigration(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<MigrationOptions>().BindConfiguration(MigrationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<TenantExporter>();
        builder.Services.AddSingleton<TenantImporter>();
        return builder;
    }

    public static IEndpointRouteBuilder MapMigrationApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/tenants").WithTags("Migration").RequireAuthorization(AuthSetup.AdminPolicy);
        group.MapGet("/{tenant}/export", Export).WithName("ExportTenant")
            .Produces<string>(StatusCodes.Status200OK, InflightFormat.MediaType)
            .WithSummary("Admin: the tenant's settings, policy versions and every open approval and case as NDJSON.");
        group.MapPost("/{tenant}/import", Import).WithName("ImportTenant").Produces<ImportResult>()
            .WithSummary("Admin: recreates an export's items here (same ids, hashes, deadlines); nothing twice.");
        return routes;
    }

    public static async Task<Results<PushStreamHttpResult, ProblemHttpResult>> Export(
        string tenant, bool? includeSecrets, ClaimsPrincipal user, TenantStore tenants, TenantExporter exporter, TimeProvider time,
        CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        var caller = Caller.From(user);
        return TypedResults.Stream(stream => exporter.WriteAsync(tenant, includeSecrets == true, caller, stream, cancellationToken),
            InflightFormat.MediaType, $"{tenant}-inflight-{time.GetUtcNow():yyyyMMdd'T'HHmmss'Z'}.ndjson");
    }

    /// <remarks>
    /// The answer is written with the migration format's own context (no nulls). Added to the HTTP options' resolver
    /// chain it was never used: the reflection resolver before it answers for every type.
    /// </remarks>
    public static async Task<Results<JsonHttpResult<ImportResult>, ValidationProblem, ProblemHttpResult>> Import(
        string tenant, HttpRequest request, ClaimsPrincipal user, TenantImporter importer, IOptions<MigrationOptions> options,
        CancellationToken cancellationToken)
    {
        if (!TenantIds.IsValid(tenant))
        {
            return Problems.NotFound("tenant");
        }
        var limit = options.Value.MaxImportBytes;
        if (request.ContentLength > limit)
        {
            return Problems.Invalid("body", $"The body is larger than {limit} bytes, the limit ({options.Value.ImportLimitSetting}).");
        }
        var (result, refused) = await importer.ImportAsync(tenant, request.Body, Caller.From(user), cancellationToken);
        return refused is not null ? Problems.Invalid(refused.Field, refused.Message)
            : TypedResults.Json(result!, MigrationJsonContext.Default.ImportResult);
    }
}
