using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Features.Tenants;

public sealed record SettingsUpdate(IDictionary<string, string[]> Errors, TenantSettings? Settings, string? Note);

/// <summary>Validates and applies a change of a tenant's settings, audited; the API and the admin page both call it.</summary>
public sealed class TenantSettingsService(TenantStore tenants, AuditLog audit)
{
    public async Task<SettingsUpdate> UpdateAsync(TenantSettings current, TenantSettingsRequest request, Caller caller, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var updated = current;
        if (request.ApprovalTtl is not null)
        {
            if (!DurationText.TryParse(request.ApprovalTtl, out var ttl))
            {
                errors["approvalTtl"] = ["A duration such as 24:00:00, PT24H or 72h."];
            }
            else if (ttl < TenantSettings.MinApprovalTtl || ttl > TenantSettings.MaxApprovalTtl)
            {
                errors["approvalTtl"] = ["From 1 minute to 30 days."];
            }
            else
            {
                updated = updated with { ApprovalTtl = ttl };
            }
        }
        if (request.Approvers is not null)
        {
            if (request.Approvers.Count > 200 || request.Approvers.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > 256 || a.Contains(',')))
            {
                errors["approvers"] = ["Up to 200 user names, none empty or containing a comma."];
            }
            else
            {
                updated = updated with { Approvers = [.. request.Approvers.Select(a => a.Trim()).Distinct(StringComparer.Ordinal)] };
            }
        }
        if (request.DisplayName is not null)
        {
            if (request.DisplayName.Length > 200)
            {
                errors["displayName"] = ["At most 200 characters."];
            }
            else
            {
                updated = updated with { DisplayName = request.DisplayName };
            }
        }
        if (errors.Count > 0)
        {
            return new SettingsUpdate(errors, null, null);
        }

        var entry = audit.NewEntry(current.Tenant, caller.Actor, "settings_changed");
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
        return new SettingsUpdate(new Dictionary<string, string[]>(), updated, note);
    }
}
