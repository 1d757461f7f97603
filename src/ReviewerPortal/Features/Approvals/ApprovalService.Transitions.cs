using System.Text.Json;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// The steps every use case shares: the approval's lock, one audited transition (the audit row and the Redis step commit
/// together, then the notifier is woken and the change announced), the notifications a transition writes.
/// </summary>
public sealed partial class ApprovalService
{
    /// <summary>The move of an open approval into a final state: who decided, why, its timers gone, kept for the retention.</summary>
    private TransitionRequest Closing(Approval a, string to, DateTimeOffset now, string decidedBy, string reason, TransitionMode mode,
        IReadOnlyList<Notification> notifications) => new()
    {
        Closing = a,
        Tenant = a.Tenant,
        ApprovalId = a.Id,
        From = a.State,
        To = to,
        Now = now,
        Mode = mode,
        ExpectedSeq = a.Seq,
        Retention = Retention,
        IdempotencyKey = a.IdempotencyKey,
        ClearTimers = true,
        AuditJson = "",
        Fields =
        [
            new("decidedAt", RedisApprovalStore.Ms(now)), new("decidedBy", decidedBy), new("reason", reason),
            new("resubmitBy", ""), new("nextStep", ""), new("nextStepAt", ""),
        ],
        Notifications = notifications,
    };

    /// <summary>
    /// Runs <paramref name="step"/> on the approval as it is once its lock is held (423 when another change holds it
    /// past the wait budget, 404 when it is gone).
    /// </summary>
    private async Task<DecisionOutcome> UnderLockAsync(Approval seen, Func<Approval, Task<DecisionOutcome>> step, CancellationToken cancellationToken)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(seen.Tenant, seen.Id), cancellationToken);
        if (held is null)
        {
            return new DecisionOutcome(Outcome.Locked, seen, "lock_busy", "Another change of this approval is in progress; retry.");
        }
        return await store.GetApprovalAsync(seen.Tenant, seen.Id) is { } current ? await step(current) : DecisionOutcome.NotFound;
    }

    /// <summary>
    /// Runs one audited transition (the audit row and the Redis step commit together, see <see cref="AuditLog"/>), then
    /// wakes the notifier for the notifications it wrote and announces the change to every instance.
    /// </summary>
    private async Task<TransitionResult> MoveAsync(AuditEntry entry, TransitionRequest request, CancellationToken cancellationToken,
        DateTimeOffset? newDeadline = null)
    {
        entry.ApprovalSeq = request.ExpectedSeq + 1; // the seq the move writes: one audited entry per step of the approval
        // A move that closes an approval (expiry, timeout, withdrawal, ...) continues the agent's trace.
        using var span = request.Closing is { } closing
            ? Observability.PortalTracing.StartContinuing("approval " + entry.Action, System.Diagnostics.ActivityKind.Internal, closing.TraceParent,
                tags: [("reviewerportal.tenant", closing.Tenant), ("reviewerportal.approval_id", closing.Id)])
            : null;
        var result = await audit.RecordAsync(entry, async json =>
        {
            var r = await store.TransitionAsync(request with { AuditJson = json });
            return (r.Happened, r);
        }, cancellationToken);
        if (result.Happened)
        {
            if (request.Closing is { } closed && ApprovalStates.IsOpen(request.From) && !ApprovalStates.IsOpen(request.To))
            {
                Closed(closed, entry.Action == "timed_out" ? "timed_out" : request.To, request.Now);
            }
            Woke(request.Notifications);
            await feed.PublishAsync(new ApprovalChange(request.Tenant, request.ApprovalId, request.To, entry.Action, request.Now,
                newDeadline ?? request.AddTimers.Select(t => (DateTimeOffset?)t.Key).Min()));
        }
        return result;
    }

    /// <summary>The notifications a transition writes: none unless the tenant has a channel.</summary>
    private static IReadOnlyList<Notification> Notify(TenantSettings settings, Approval a, string kind, IEnumerable<string> recipients, DateTimeOffset now,
        string subject, string message, string? state = null, int? level = null)
    {
        if (settings.Workflow.Notifications is not { Any: true } && settings.Slack?.WebhookUrl is null)
        {
            return [];
        }
        return
        [
            new Notification
            {
                Id = Notification.NewId(now),
                Kind = kind,
                Tenant = a.Tenant,
                ApprovalId = a.Id,
                Topic = a.Job.Topic,
                State = state ?? a.State,
                Version = a.Version,
                EscalationLevel = level ?? a.EscalationLevel,
                TraceParent = a.TraceParent,
                Recipients = [.. recipients.Distinct(StringComparer.Ordinal)],
                Subject = subject,
                Message = message,
                At = now,
            },
        ];
    }

    private void Woke(IReadOnlyList<Notification> notifications)
    {
        if (notifications.Count > 0)
        {
            notifySignal.Wake();
        }
    }

    /// <summary>Who asked: the person the agent acted for (agents are told over the hub and the webhook).</summary>
    private static IEnumerable<string> Requesters(Approval a) => a.RequestedBy is null ? [] : [a.RequestedBy];
}

