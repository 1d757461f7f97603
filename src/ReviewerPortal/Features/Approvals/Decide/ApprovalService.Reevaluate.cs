using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Re-evaluation: the way out of <c>snapshot_changed</c>, a fresh snapshot under the tenant's current policy.</summary>
public sealed partial class ApprovalService
{
    /// <summary>
    /// Takes a fresh snapshot under the current policy (the way out of <c>snapshot_changed</c>): require_human keeps
    /// the approval pending with the new snapshot; deny rejects it; allow (or throttle) still needs the human who
    /// asked, and that is recorded.
    /// </summary>
    public async Task<DecisionOutcome> ReevaluateAsync(Caller caller, string id, string? reason, CancellationToken cancellationToken)
    {
        if (await ApprovalAndSettingsAsync(caller, id) is not ({ } seen, { } settings))
        {
            return DecisionOutcome.NotFound;
        }
        var tenant = seen.Tenant;
        if (await RefuseAsync(caller, settings, seen, "reevaluate", cancellationToken) is { } refused)
        {
            return refused;
        }
        reason = await redactor.RedactAsync(tenant, settings.Redaction, reason, "reason");
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, id), cancellationToken);
        if (held is null)
        {
            return new DecisionOutcome(Outcome.Locked, Code: "lock_busy", Detail: "Another decision on this approval is in progress; retry.");
        }
        var current = await store.GetApprovalAsync(tenant, id);
        if (current is null)
        {
            return DecisionOutcome.NotFound;
        }
        if (current.State != ApprovalStates.Pending)
        {
            return new DecisionOutcome(Outcome.Conflict, current, current.State, $"The approval is already {current.State}.");
        }
        var (policy, evaluation) = await EvaluateAsync(tenant, current.Job);
        if (policy is null)
        {
            return new DecisionOutcome(Outcome.Unavailable, current, "no_policy", "The tenant has no published policy.");
        }

        var now = time.GetUtcNow();
        var rejects = evaluation.Decision == PolicyDecision.Deny;
        var note = evaluation.Decision switch
        {
            PolicyDecision.Deny => $"policy now denies this job (rule {evaluation.RuleId ?? "(default)"})",
            PolicyDecision.RequireHuman => $"policy still requires a human (rule {evaluation.RuleId ?? "(default)"})",
            PolicyDecision.Allow => $"policy now allows this job (rule {evaluation.RuleId ?? "(default)"}); a reviewer asked for it, so a human still decides",
            _ => $"policy now throttles this job (rule {evaluation.RuleId ?? "(default)"}); a human still decides",
        };
        var to = rejects ? ApprovalStates.Rejected : ApprovalStates.Pending;
        var entry = Entry(current, caller.Actor, "reevaluated", ApprovalStates.Pending, to);
        entry.PolicySnapshot = policy.Snapshot;
        entry.Reason = string.IsNullOrWhiteSpace(reason) ? note : $"{note}; {reason}";
        entry.Details = $"previous snapshot {current.PolicySnapshot}";
        List<KeyValuePair<string, string>> fields =
        [
            new("policySnapshot", policy.Snapshot),
            new("ruleId", evaluation.RuleId ?? ""),
            new("reevaluatedAt", RedisApprovalStore.Ms(now)),
            new("reevaluationNote", note),
        ];
        if (rejects)
        {
            fields.Add(new("decidedAt", RedisApprovalStore.Ms(now)));
            fields.Add(new("decidedBy", "policy"));
            fields.Add(new("reason", note));
        }
        entry.ApprovalSeq = current.Seq + 1;
        var result = await audit.RecordAsync(entry, async json =>
        {
            var r = await store.TransitionAsync(new TransitionRequest
            {
                Tenant = tenant,
                ApprovalId = id,
                From = ApprovalStates.Pending,
                To = to,
                ExpectedSeq = current.Seq,
                IdempotencyKey = current.IdempotencyKey,
                Now = now,
                Mode = rejects ? TransitionMode.Decide : TransitionMode.Update,
                Retention = rejects ? Retention : null,
                ClearTimers = rejects,
                AuditJson = json,
                Fields = fields,
            });
            return (r.Happened, r);
        }, cancellationToken);
        if (!result.Happened)
        {
            return await store.GetApprovalAsync(tenant, id) is { } latest
                ? new DecisionOutcome(Outcome.Conflict, latest, latest.State, $"The approval is {latest.State}.")
                : DecisionOutcome.NotFound;
        }
        if (rejects)
        {
            Closed(current, ApprovalStates.Rejected, now);
        }
        await feed.PublishAsync(new ApprovalChange(tenant, id, to, "reevaluated", now, null));
        return new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), Detail: note);
    }
}
