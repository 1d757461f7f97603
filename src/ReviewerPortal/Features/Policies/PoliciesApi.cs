using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Policies;

public sealed record PolicyResponse(string Tenant, int Version, string Snapshot, string Yaml, string CanonicalYaml,
    DateTimeOffset PublishedAt, string PublishedBy);

public sealed record PolicyPublishResponse(string Tenant, int? Version, string Snapshot, bool Changed);

public sealed record PolicyHistoryResponse(string Tenant, IReadOnlyList<PolicyHistoryEntry> Versions);

/// <summary>Tenants' policies: every published version is kept, identified by its snapshot hash.</summary>
public static class PoliciesApi
{
    public const int MaxYamlBytes = 256 * 1024;

    public static IEndpointRouteBuilder MapPoliciesApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/tenants/{tenant}/policy").WithTags("Policies").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapGet("/", GetCurrent).WithName("GetPolicy").WithSummary("The tenant's current policy and its snapshot hash.");
        group.MapGet("/history", History).WithName("GetPolicyHistory").WithSummary("Every published version, newest first.");
        group.MapGet("/versions/{snapshot}", GetVersion).WithName("GetPolicyVersion");
        group.MapPut("/", Publish).WithName("PublishPolicy").RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: publish a YAML policy (Content-Type: application/yaml) as the new current version.");
        return routes;
    }

    public static async Task<Results<Ok<PolicyResponse>, ProblemHttpResult>> GetCurrent(
        string tenant, ClaimsPrincipal user, TenantAccess access, PolicyStore policies)
    {
        if (!await access.CanReadAsync(Caller.From(user), tenant) || await policies.GetCurrentAsync(tenant) is not { } current)
        {
            return Problems.NotFound("policy");
        }
        return TypedResults.Ok(ToResponse(current));
    }

    public static async Task<Results<Ok<PolicyResponse>, ProblemHttpResult>> GetVersion(
        string tenant, string snapshot, ClaimsPrincipal user, TenantAccess access, PolicyStore policies)
    {
        if (!await access.CanReadAsync(Caller.From(user), tenant) || await policies.GetVersionAsync(tenant, snapshot) is not { } version)
        {
            return Problems.NotFound("policy version");
        }
        return TypedResults.Ok(ToResponse(version));
    }

    public static async Task<Results<Ok<PolicyHistoryResponse>, ProblemHttpResult>> History(
        string tenant, ClaimsPrincipal user, TenantAccess access, PolicyStore policies)
    {
        if (!await access.CanReadAsync(Caller.From(user), tenant))
        {
            return Problems.NotFound("tenant");
        }
        return TypedResults.Ok(new PolicyHistoryResponse(tenant, await policies.HistoryAsync(tenant)));
    }

    public static async Task<Results<Ok<PolicyPublishResponse>, ValidationProblem, ProblemHttpResult>> Publish(
        string tenant, HttpRequest request, ClaimsPrincipal user, TenantStore tenants, PolicyPublisher publisher,
        CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        if (request.ContentType is not { } type || !(type.Contains("yaml", StringComparison.OrdinalIgnoreCase) || type.StartsWith("text/plain", StringComparison.OrdinalIgnoreCase)))
        {
            return Problems.Invalid("Content-Type", "Send the policy as application/yaml.");
        }
        using var reader = new StreamReader(request.Body, Encoding.UTF8);
        var buffer = new char[MaxYamlBytes + 1];
        var read = await reader.ReadBlockAsync(buffer, cancellationToken);
        if (read > MaxYamlBytes)
        {
            return Problems.Invalid("body", $"A policy is at most {MaxYamlBytes / 1024} KiB.");
        }
        var yaml = new string(buffer, 0, read);
        var result = await publisher.PublishAsync(tenant, yaml, Caller.From(user), cancellationToken);
        if (result.Errors.Count > 0)
        {
            return PolicyInvalid(result.Errors);
        }
        return TypedResults.Ok(new PolicyPublishResponse(tenant, result.Version, result.Snapshot!, result.Version is not null));
    }

    /// <summary>400 with every error under its field path, and the line and column of each.</summary>
    public static ValidationProblem PolicyInvalid(IReadOnlyList<PolicyError> errors)
    {
        var byField = errors.GroupBy(e => string.IsNullOrEmpty(e.Field) ? "yaml" : e.Field)
            .ToDictionary(g => g.Key, g => g.Select(e => $"line {e.Line}, column {e.Column}: {e.Message}").ToArray());
        return TypedResults.ValidationProblem(byField, title: "The policy is invalid; nothing changed.",
            type: "urn:reviewerportal:problem:invalid_policy",
            extensions: new Dictionary<string, object?>
            {
                ["locations"] = errors.Select(e => new Dictionary<string, object?>
                {
                    ["field"] = e.Field, ["line"] = e.Line, ["column"] = e.Column, ["message"] = e.Message,
                }).ToList(),
            });
    }

    private static PolicyResponse ToResponse(PolicyVersion v) =>
        new(v.Tenant, v.Version, v.Snapshot, v.Yaml, v.Document.CanonicalYaml, v.PublishedAt, v.PublishedBy);
}
