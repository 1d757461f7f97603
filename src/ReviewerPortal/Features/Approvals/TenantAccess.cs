using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Who may read and who may decide a tenant's approvals.</summary>
public sealed class TenantAccess(TenantStore tenants)
{
    /// <summary>
    /// Agents read their own tenant; on-call and admins read every tenant; reviewers the tenants they approve for. The
    /// accounts' audit stream (sign-ins, throttling, role changes) only admins read.
    /// </summary>
    public async Task<bool> CanReadAsync(Caller caller, string tenant)
    {
        if (tenant == AccountAudit.Stream)
        {
            return !caller.IsAgent && caller.IsAdmin;
        }
        if (caller.IsAgent)
        {
            return caller.AgentTenant == tenant;
        }
        if (caller.ReadsEveryTenant)
        {
            return await tenants.ExistsAsync(tenant);
        }
        var settings = await tenants.GetSettingsAsync(tenant);
        return settings is not null && IsApprover(caller, settings);
    }

    /// <summary>Only people listed as the tenant's approvers decide; agents and on-call never do.</summary>
    /// <summary>Deciding takes the reviewer role as well as a place on the tenant's list (on-call and admins decide nothing).</summary>
    public static bool CanDecide(Caller caller, TenantSettings settings) =>
        !caller.IsAgent && caller.IsReviewer && settings.Approvers.Contains(caller.Name, StringComparer.Ordinal);

    /// <summary>The tenant's approvers, and the backups of every escalation level the approval has reached.</summary>
    public static bool CanDecide(Caller caller, TenantSettings settings, Approval approval) =>
        !caller.IsAgent && caller.IsReviewer && settings.EligibleAt(approval.EscalationLevel).Contains(caller.Name, StringComparer.Ordinal);

    /// <summary>Approvers and the people of its escalation levels read the tenant.</summary>
    private static bool IsApprover(Caller caller, TenantSettings settings) => settings.Involves(caller.Name);

    public async Task<IReadOnlyList<string>> ReadableTenantsAsync(Caller caller)
    {
        if (caller.IsAgent)
        {
            return caller.AgentTenant is null ? [] : [caller.AgentTenant];
        }
        var all = await tenants.ListAsync();
        if (caller.ReadsEveryTenant)
        {
            return all;
        }
        var readable = new List<string>();
        foreach (var tenant in all)
        {
            if (await CanReadAsync(caller, tenant))
            {
                readable.Add(tenant);
            }
        }
        return readable;
    }
}
