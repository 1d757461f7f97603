using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Policies;

public sealed record PublishResult(IReadOnlyList<PolicyError> Errors, string? Snapshot, int? Version);

/// <summary>Validates and publishes a tenant's policy, audited and announced; the API and the admin page both call it.</summary>
public sealed class PolicyPublisher(PolicyStore policies, AuditLog audit, ChangeFeed feed, TimeProvider time)
{
    /// <summary>Errors when invalid (nothing changes); otherwise the new version, or a null version when it is the current one already.</summary>
    public async Task<PublishResult> PublishAsync(string tenant, string yaml, Caller caller, CancellationToken cancellationToken)
    {
        var parsed = PolicyParser.Parse(yaml);
        if (parsed.Document is not { } document)
        {
            return new PublishResult(parsed.Errors, null, null);
        }
        var previous = await policies.GetCurrentSnapshotAsync(tenant);
        var entry = audit.NewEntry(tenant, caller.Actor, "policy_published");
        entry.PolicySnapshot = document.Snapshot;
        entry.Details = $"previous snapshot {previous ?? "(none)"}";
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
