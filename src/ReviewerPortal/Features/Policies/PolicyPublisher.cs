using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Policies;

/// <param name="Stale">With an expected current snapshot: another version was published since; nothing changed.</param>
public sealed record PublishResult(IReadOnlyList<PolicyError> Errors, string? Snapshot, int? Version, bool Stale = false);

/// <summary>Validates and publishes a tenant's policy, audited and announced; the API and the admin page both call it.</summary>
public sealed class PolicyPublisher(PolicyStore policies, AuditLog audit, ChangeFeed feed, TimeProvider time)
{
    /// <summary>Errors when invalid (nothing changes); otherwise the new version, or a null version when it is the current one already.</summary>
    /// <param name="note">What the change is, for the audit row's details (a standing approval added or revoked).</param>
    /// <param name="expectedCurrent">A read-modify-publish: only while this is still the current snapshot (else <see cref="PublishResult.Stale"/>).</param>
    public async Task<PublishResult> PublishAsync(string tenant, string yaml, Caller caller, CancellationToken cancellationToken, string? note = null,
        string? expectedCurrent = null)
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
        var (status, version) = await audit.RecordAsync(entry, async json =>
        {
            var published = await policies.PublishIfCurrentAsync(tenant, document, yaml, caller.Name, time.GetUtcNow(), json, expectedCurrent);
            return (published.Status == "ok", published);
        }, cancellationToken);
        if (status == "stale")
        {
            return new PublishResult([], null, null, Stale: true);
        }
        if (version is not null)
        {
            await feed.PublishAsync(new ApprovalChange(tenant, "", "", "policy_published", time.GetUtcNow(), null));
        }
        return new PublishResult([], document.Snapshot, version);
    }
}
