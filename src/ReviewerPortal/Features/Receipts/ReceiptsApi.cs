using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Receipts;

/// <summary>Signed approval receipts and the public keys that verify them.</summary>
public static class ReceiptsApi
{
    public static IEndpointRouteBuilder MapReceiptsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/approvals/{id}/receipt", Receipt).WithTags("Receipts").WithName("GetReceipt")
            .RequireAuthorization(AuthSetup.ApiPolicy)
            .WithSummary("A signed receipt of the decision (409 while pending).");
        routes.MapGet("/api/v1/tenants/{tenant}/keys", Keys).WithTags("Receipts").WithName("GetPublicKeys").AllowAnonymous()
            .WithSummary("The tenant's receipt-signing public keys (ECDSA P-256, SPKI base64), retired ones included.");
        routes.MapPost("/api/v1/tenants/{tenant}/keys/rotate", Rotate).WithTags("Receipts").WithName("RotateKey")
            .RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: a new signing key; old receipts stay verifiable.");
        return routes;
    }

    public static async Task<Results<Ok<ApprovalReceipt>, ProblemHttpResult>> Receipt(
        string id, ClaimsPrincipal user, ApprovalService approvals, ReceiptSigner signer, Audit.AuditLog audit, CancellationToken cancellationToken)
    {
        if (await approvals.GetAsync(Caller.From(user), id) is not { } approval)
        {
            return Problems.NotFound();
        }
        // The receipt names the audit head it was issued at, so it can be held against the signed checkpoints.
        var head = approval.State == ApprovalStates.Pending ? null : await audit.HeadAsync(approval.Tenant, cancellationToken);
        return await signer.IssueAsync(approval, head) is { } receipt
            ? TypedResults.Ok(receipt)
            : Problems.Of(StatusCodes.Status409Conflict, "pending", "The approval is still pending: there is no decision to sign.");
    }

    public static async Task<Results<Ok<PublicKeysResponse>, ProblemHttpResult>> Keys(string tenant, TenantStore tenants, ReceiptSigner signer) =>
        await tenants.ExistsAsync(tenant)
            ? TypedResults.Ok(new PublicKeysResponse(tenant, "ES256", await signer.PublicKeysAsync(tenant)))
            : Problems.NotFound("tenant");

    public static async Task<Results<Ok<PublicKeysResponse>, ProblemHttpResult>> Rotate(
        string tenant, ClaimsPrincipal user, TenantStore tenants, ReceiptSigner signer, Audit.AuditLog audit, CancellationToken cancellationToken)
    {
        if (!await tenants.ExistsAsync(tenant))
        {
            return Problems.NotFound("tenant");
        }
        var kid = await signer.RotateAsync(tenant);
        var entry = audit.NewEntry(tenant, Caller.From(user).Actor, "signing_key_rotated");
        entry.Details = kid;
        await audit.AppendAsync(entry, cancellationToken);
        return TypedResults.Ok(new PublicKeysResponse(tenant, "ES256", await signer.PublicKeysAsync(tenant)));
    }
}
