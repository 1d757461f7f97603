using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

public enum Outcome { Ok, AlreadyDone, NotFound, Forbidden, Conflict, Locked, Unavailable }

/// <summary>The result of a decision, a re-evaluation or a read: what happened and the approval as it now is.</summary>
public sealed record DecisionOutcome(Outcome Kind, Approval? Approval = null, string? Code = null, string? Detail = null)
{
    public static DecisionOutcome NotFound { get; } = new(Outcome.NotFound, Code: "not_found", Detail: "No such approval.");

    /// <summary>The tenant's <c>redactFields</c> as the step read them with the approval (null: not read), so the answer masks without reading them again.</summary>
    public IReadOnlyList<string>? RedactionFields { get; init; }

    /// <summary>The tenant's audit head right after the commit that wrote this step's row (null: not known without reading it).</summary>
    public AuditHead? AuditHead { get; init; }
}

/// <summary>
/// The approval core: submit-time policy decisions, decisions under a distributed lock, re-evaluation, expiry.
/// Every transition writes its audit row in the same step (see <see cref="AuditLog"/>) and is announced on the
/// change feed. The API and the portal both call this one class.
/// </summary>
public sealed partial class ApprovalService(
    IApprovalStore store,
    PolicyStore policies,
    TenantStore tenants,
    TenantAccess access,
    AuditLog audit,
    RedisLockFactory locks,
    ChangeFeed feed,
    TimeProvider time,
    IOptions<ApprovalOptions> options,
    IOptions<StorageOptions> storage,
    Counters counters,
    Dispatch.DispatchSignal dispatchSignal,
    Notifications.NotifySignal notifySignal,
    Redaction.Redactor redactor,
    Observability.PortalMetrics metrics,
    ILogger<ApprovalService> logger)
{
    private TimeSpan Retention => storage.Value.DecidedRetention;

    // ---------------------------------------------------------------- read

    /// <summary>The approval if the caller may read its tenant; otherwise null, exactly as if it did not exist.</summary>
    public async Task<Approval?> GetAsync(Caller caller, string id)
    {
        var tenant = await TenantOfAsync(caller, id);
        return tenant is null ? null : await store.GetApprovalAsync(tenant, id);
    }

    private async Task<string?> TenantOfAsync(Caller caller, string id)
    {
        if (!ApprovalIds.LooksValid(id))
        {
            return null;
        }
        var tenant = caller.IsAgent ? caller.AgentTenant : await store.FindTenantAsync(id);
        return tenant is not null && await access.CanReadAsync(caller, tenant) ? tenant : null;
    }

    /// <summary>
    /// The approval and its tenant's settings, each read once, for a step a person takes on it; null (a 404) when either
    /// is missing or the caller may not read the tenant.
    /// </summary>
    private async Task<(Approval Approval, TenantSettings Settings)?> ApprovalAndSettingsAsync(Caller caller, string id)
    {
        if (!ApprovalIds.LooksValid(id))
        {
            return null;
        }
        var tenant = caller.IsAgent ? caller.AgentTenant : await store.FindTenantAsync(id);
        if (tenant is null || !TenantIds.IsValid(tenant))
        {
            return null;
        }
        // The approval and the settings revision in one round trip; settings already seen at that revision are cached.
        var (approval, rev) = await store.GetApprovalWithSettingsRevAsync(tenant, id);
        var settings = await tenants.GetSettingsAsync(tenant, rev);
        if (settings is null || !await access.CanReadAsync(caller, settings))
        {
            return null;
        }
        return approval is null ? null : (approval, settings);
    }

    /// <summary>Answers as soon as the approval leaves <c>pending</c>, or with its pending state after <paramref name="wait"/>.</summary>
    public async Task<Approval?> WaitForDecisionAsync(Caller caller, string id, TimeSpan wait, CancellationToken cancellationToken)
    {
        var tenant = await TenantOfAsync(caller, id);
        if (tenant is null)
        {
            return null;
        }
        // Changes that keep it pending (a re-evaluation) wake the wait too: look again until it leaves pending.
        var deadline = time.GetUtcNow() + wait;
        var waited = false;
        while (true)
        {
            using var waiter = feed.Watch(tenant, id);
            var approval = await store.GetApprovalAsync(tenant, id);
            var left = deadline - time.GetUtcNow();
            if (approval is null || approval.State != ApprovalStates.Pending || left <= TimeSpan.Zero)
            {
                if (waited && approval?.DecidedAt is { } decidedAt)
                {
                    metrics.AgentWoken(tenant, "wait", time.GetUtcNow() - decidedAt);
                }
                return approval;
            }
            waited = true;
            try
            {
                await waiter.Changed.WaitAsync(left, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                return await store.GetApprovalAsync(tenant, id);
            }
        }
    }

    public async Task<ApprovalPage?> ListAsync(Caller caller, string tenant, string state, string? cursor, int limit)
    {
        if (!await access.CanReadAsync(caller, tenant))
        {
            return null;
        }
        return await store.ListAsync(tenant, state, cursor, limit);
    }

    /// <summary>An approval left the open states: counted by outcome with the age it reached, and its wait recorded in its trace.</summary>
    private void Closed(Approval approval, string outcome, DateTimeOffset now)
    {
        var since = approval.VersionSubmittedAt ?? approval.CreatedAt;
        metrics.Decided(approval.Tenant, outcome, now - since);
        Observability.PortalTracing.RecordWait(approval.TraceParent, since, now, approval.Tenant, approval.Id, outcome);
    }

    private AuditEntry Entry(Approval approval, string actor, string action, string? from, string? to)
    {
        var entry = audit.NewEntry(approval.Tenant, actor, action);
        entry.ApprovalId = approval.Id;
        entry.JobId = approval.JobId;
        entry.FromState = from;
        entry.ToState = to;
        entry.PolicySnapshot = approval.PolicySnapshot;
        entry.JobHash = approval.JobHash;
        return entry;
    }
}

