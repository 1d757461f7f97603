using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

/// <summary>An approval past its deadline expires (the expiry service and any decision that finds it late call this); recorded once.</summary>
public sealed partial class ApprovalService
{
    /// <summary>Expires one approval whose deadline passed (called by the timer service; safe on every instance).</summary>
    public async Task<bool> ExpireAsync(string tenant, string id, CancellationToken cancellationToken, long? timerDueMs = null)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, id), cancellationToken, TimeSpan.FromSeconds(2));
        if (held is null)
        {
            return false;
        }
        var current = await store.GetApprovalAsync(tenant, id);
        if (current is null || current.State != ApprovalStates.Pending)
        {
            if (timerDueMs is { } seen)
            {
                // Fenced on the due time it fired at: a newer version's deadline is never removed by a stale holder.
                await store.MoveTimerAsync(tenant, RedisKeys.ExpireTimer(id), seen, null);
            }
            return false;
        }
        return await ExpireDueAsync(current, time.GetUtcNow(), cancellationToken) is not null;
    }

    /// <summary>
    /// Expires <paramref name="current"/> if its deadline passed, fenced on the seq it was read at (the expiry timer holds
    /// the lock, a decision that finds it late does not need to); null when it was not due or another change came first.
    /// </summary>
    private async Task<Approval?> ExpireDueAsync(Approval current, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (now < current.ExpiresAt)
        {
            return null;
        }
        var settings = await tenants.GetSettingsAsync(current.Tenant);
        var entry = Entry(current, "system", "expired", ApprovalStates.Pending, ApprovalStates.Expired);
        entry.Reason = $"no decision before the deadline {current.ExpiresAt:O}; auto-rejected";
        var notifications = settings is null ? [] : Notify(settings, current, Notifications.NotificationKinds.Timeout,
            [.. settings.EligibleAt(current.EscalationLevel), .. Requesters(current)], now,
            $"Expired: {current.Job.Topic}", $"No decision on {current.Job.Topic} in {current.Job.Env} before {current.ExpiresAt:u}; auto-rejected.",
            state: ApprovalStates.Expired);
        var result = await MoveAsync(entry, Closing(current, ApprovalStates.Expired, now, "system", "expired", TransitionMode.Expire, notifications),
            cancellationToken);
        return result.Happened ? await store.GetApprovalAsync(current.Tenant, current.Id) : null;
    }
}
