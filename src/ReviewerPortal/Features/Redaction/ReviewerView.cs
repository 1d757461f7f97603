using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Redaction;

/// <summary>
/// What the read API shows of an approval: to a person (reviewer, on-call, admin: any account) the payload with the
/// tenant's <c>redactFields</c> masked, in the current version and every earlier one; to an agent key of the tenant
/// the payload as submitted (the agent sent it, and its worker receives it through the dispatch anyway). The job hash
/// is always the hash of the original payload.
/// </summary>
public sealed class ReviewerView(TenantStore tenants)
{
    public async Task<Approval> ForAsync(Caller caller, Approval approval) =>
        caller.IsAgent ? approval : await MaskAsync(approval);

    public async Task<IReadOnlyList<Approval>> ForAsync(Caller caller, string tenant, IReadOnlyList<Approval> approvals)
    {
        if (caller.IsAgent || approvals.Count == 0)
        {
            return approvals;
        }
        var fields = await FieldsAsync(tenant);
        return [.. approvals.Select(a => PayloadMasking.Mask(a, fields))];
    }

    /// <summary>The approval masked for people, whoever asks.</summary>
    public async Task<Approval> MaskAsync(Approval approval) => PayloadMasking.Mask(approval, await FieldsAsync(approval.Tenant));

    /// <summary>The payload paths the tenant masks (none for an unknown tenant).</summary>
    public async Task<IReadOnlyList<string>> FieldsAsync(string tenant) =>
        (await tenants.GetSettingsAsync(tenant))?.Redaction.Fields ?? [];
}
