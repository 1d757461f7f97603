using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Policies;

public sealed record PublishResult(IReadOnlyList<PolicyError> Errors, string? Snapshot, int? Version);

/// <summary>Validates and publishes a tenant's policy, audited and announced; the API and the admin page both call it.</summary>
public sealed class PolicyPublisher(PolicyStore policies, AuditLog audit, ChangeFeed feed, TimeProvider time)
{
    /// <summary>Errors when invalid (nothing changes); otherwise the new version, or a null version when it is the current one already.</summary>
    /// <param name="note">What the change is, for the audit row's details (a standing approval added or revoked).</param>
    public async Task<PublishResult> PublishAsync(string tenant, string yaml, Caller caller, CancellationToken cancellationToken, string? note = null)
    {
        var parsed = PolicyParser.Parse(yaml);
        if (parsed.Document is not { } document)
        {
            return new PublishResult(parsed.Errors, null, null);
        }
        var previous = await policies.GetCurrentSnapshotAsync(tenant);
        var entry = audit.NewEntry(tenant, caller.Actor, "policy_published");
        entry.PolicySnapshot = document.Snapshot;
        entry.Details = AuditDetails.Join($"previous snapshot {previous ?? "(none)"}", note);
        var version = await audit.RecordAsync(entry, async json =>
        {
            var published = await policies.PublishAsync(tenant, document, yaml, caller.Name, time.GetUtcNow(), json);
            return (published is not null, published);
        }, cancellationToken);
        if (version is not null)
        {
            await feed.PublishAsync(new ApprovalChange(tenant, "", "", "policy_published", time.GetUtcNow(), null));
        }
        return new PublishResult([], document.Snapshot, version);
    }
}
