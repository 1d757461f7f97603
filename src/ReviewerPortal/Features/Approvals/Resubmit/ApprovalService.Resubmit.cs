using System.Text.Json;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// Request changes → resubmit: a reviewer sends the job back with a comment, the submitter resubmits within the window
/// (a new version with its lineage, judged by the current policy) or the window closes and the approval ends rejected.
/// </summary>
public sealed partial class ApprovalService
{
    /// <summary>Closes a resubmission window that ran out: the approval ends rejected.</summary>
    public async Task<bool> FireResubmissionWindowAsync(string tenant, string id, CancellationToken cancellationToken, long? timerDueMs = null)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, id), cancellationToken, TimeSpan.FromSeconds(2));
        if (held is null)
        {
            return false;
        }
        var current = await store.GetApprovalAsync(tenant, id);
        if (current is null || current.State != ApprovalStates.ChangesRequested || current.ResubmitBy is not { } by)
        {
            if (timerDueMs is { } seen)
            {
                await store.MoveTimerAsync(tenant, RedisKeys.ResubmitTimer(id), seen, null);
            }
            return false;
        }
        var now = time.GetUtcNow();
        return by <= now && await CloseWindowLockedAsync(current, by, now, cancellationToken);
    }

    private async Task<bool> CloseWindowLockedAsync(Approval current, DateTimeOffset by, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var settings = await tenants.GetSettingsAsync(current.Tenant);
        var why = $"no resubmission before {by:u} after changes were requested";
        var entry = Entry(current, "system:timer", "resubmission_window_closed", ApprovalStates.ChangesRequested, ApprovalStates.Rejected);
        entry.Reason = why;
        var notifications = settings is null ? [] : Notify(settings, current, NotificationKinds.Decision, Requesters(current), now,
            $"Rejected: {current.Job.Topic}", $"{current.Job.Topic}: {why}.", state: ApprovalStates.Rejected);
        var result = await MoveAsync(entry, Closing(current, ApprovalStates.Rejected, now, "system:timer", why, TransitionMode.Update, notifications) with
        {
            Guard = new("resubmitBy", RedisApprovalStore.Ms(by)),
        }, cancellationToken);
        return result.Happened;
    }

    /// <summary>A reviewer sends the job back with a comment; the submitter may resubmit within the window (or it ends rejected).</summary>
    public async Task<DecisionOutcome> RequestChangesAsync(Caller caller, string id, string reason, CancellationToken cancellationToken)
    {
        if (await ApprovalAndSettingsAsync(caller, id) is not ({ } current, { } settings))
        {
            return DecisionOutcome.NotFound;
        }
        var tenant = current.Tenant;
        if (await RefuseAsync(caller, settings, current, "request_changes", cancellationToken) is { } refused)
        {
            return refused;
        }
        reason = await redactor.RedactAsync(tenant, settings.Redaction, reason, "reason") ?? "";
        return await UnderLockAsync(current, current => RequestChangesLockedAsync(caller, current, settings, reason, cancellationToken), cancellationToken);
    }

    private async Task<DecisionOutcome> RequestChangesLockedAsync(Caller caller, Approval current, TenantSettings settings, string reason, CancellationToken cancellationToken)
    {
        var (tenant, id) = (current.Tenant, current.Id);
        if (await RefuseAsync(caller, settings, current, "request_changes", cancellationToken) is { } refused)
        {
            return refused;
        }
        if (current.State == ApprovalStates.ChangesRequested)
        {
            return new DecisionOutcome(Outcome.AlreadyDone, current, "already_changes_requested");
        }
        if (current.State != ApprovalStates.Pending)
        {
            return new DecisionOutcome(Outcome.Conflict, current, current.State, $"The approval is already {current.State}.");
        }
        var now = time.GetUtcNow();
        if (now >= current.ExpiresAt)
        {
            var expired = await ExpireDueAsync(current, now, cancellationToken) ?? current;
            return new DecisionOutcome(Outcome.Conflict, expired, expired.State, $"The approval is already {expired.State}.");
        }

        var w = settings.Workflow;
        var resubmissions = current.Version - 1;
        if (resubmissions >= w.MaxResubmissions)
        {
            // No resubmission left: asking for changes ends it.
            var why = $"changes requested ({reason}), but the maximum of {w.MaxResubmissions} resubmission{(w.MaxResubmissions == 1 ? "" : "s")} is reached";
            var rejected = Entry(current, caller.Actor, "rejected", ApprovalStates.Pending, ApprovalStates.Rejected);
            rejected.Reason = why;
            var r = await MoveAsync(rejected, Closing(current, ApprovalStates.Rejected, now, caller.Name, why, TransitionMode.Decide,
                Notify(settings, current, NotificationKinds.Decision, Requesters(current), now,
                    $"Rejected: {current.Job.Topic}", $"{caller.Name} rejected {current.Job.Topic}: {why}.", state: ApprovalStates.Rejected)), cancellationToken);
            return r.Happened
                ? new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), "rejected", why)
                : await SettledNowAsync(tenant, id);
        }

        var by = now + w.ResubmissionWindow;
        var entry = Entry(current, caller.Actor, "changes_requested", ApprovalStates.Pending, ApprovalStates.ChangesRequested);
        entry.Reason = reason;
        entry.Details = $"resubmission {resubmissions + 1} of {w.MaxResubmissions} allowed until {by:O}";
        var result = await MoveAsync(entry, new TransitionRequest
        {
            Tenant = tenant,
            ApprovalId = id,
            From = ApprovalStates.Pending,
            To = ApprovalStates.ChangesRequested,
            ExpectedSeq = current.Seq,
            IdempotencyKey = current.IdempotencyKey,
            Now = now,
            Mode = TransitionMode.Decide,
            Retention = w.ResubmissionWindow + options.Value.ExpirySafetyMargin,
            AuditJson = "",
            RemoveTimers = [RedisKeys.ExpireTimer(id), RedisKeys.StepTimer(id)],
            AddTimers = [new(by, RedisKeys.ResubmitTimer(id))],
            Fields =
            [
                new("resubmitBy", RedisApprovalStore.Ms(by)),
                new("changesRequestedBy", caller.Name),
                new("changesReason", reason),
                new("nextStep", ""),
                new("nextStepAt", ""),
            ],
            Notifications = Notify(settings, current, NotificationKinds.ChangesRequested, Requesters(current), now,
                $"Changes requested: {current.Job.Topic}",
                $"{caller.Name} asks for changes to {current.Job.Topic} in {current.Job.Env}: {reason}. Resubmit before {by:u}.",
                state: ApprovalStates.ChangesRequested),
        }, cancellationToken);
        return result.Happened
            ? new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), "changes_requested")
            : await SettledNowAsync(tenant, id);
    }

    /// <summary>
    /// The submitter sends an amended job after changes were requested: a new version (new job id, job hash and policy
    /// snapshot; the previous version kept in the lineage), votes reset, SLA and TTL started afresh.
    /// </summary>
    public async Task<ResubmitOutcome> ResubmitAsync(Caller agent, string id, JsonElement payload, string? idempotencyKey, CancellationToken cancellationToken)
    {
        var tenant = agent.AgentTenant;
        var current = tenant is null || !ApprovalIds.LooksValid(id) ? null : await store.GetApprovalAsync(tenant, id);
        if (tenant is null || current is null)
        {
            return new ResubmitOutcome(DecisionOutcome.NotFound);
        }
        if (current.Submitter != agent.Name)
        {
            return new ResubmitOutcome(new DecisionOutcome(Outcome.Forbidden, current, "not_the_submitter",
                $"Only the submitter ('{current.Submitter}') may resubmit this approval."));
        }
        if (idempotencyKey is not null && current.LastResubmitKey == idempotencyKey)
        {
            return new ResubmitOutcome(new DecisionOutcome(Outcome.AlreadyDone, current, "already_resubmitted"));
        }
        string? deniedBy = null;
        var outcome = await UnderLockAsync(current, async current =>
        {
            var settings = await tenants.GetSettingsAsync(tenant);
            if (settings is null)
            {
                return DecisionOutcome.NotFound;
            }
            if (idempotencyKey is not null && current.LastResubmitKey == idempotencyKey)
            {
                // A concurrent retry with the same key won the lock first: this one gets the same answer.
                return new DecisionOutcome(Outcome.AlreadyDone, current, "already_resubmitted");
            }
            if (current.State != ApprovalStates.ChangesRequested || current.ResubmitBy is not { } by)
            {
                return new DecisionOutcome(Outcome.Conflict, current, current.State,
                    current.State == ApprovalStates.Pending
                        ? "No changes were requested: the approval is pending."
                        : $"The approval is {current.State}; only an approval with changes requested can be resubmitted.");
            }
            var now = time.GetUtcNow();
            if (now >= by)
            {
                await CloseWindowLockedAsync(current, by, now, cancellationToken);
                return new DecisionOutcome(Outcome.Conflict, await store.GetApprovalAsync(tenant, id) ?? current,
                    "resubmission_window_closed", $"The resubmission window closed at {by:u}; the approval is rejected.");
            }

            var job = current.Job with { Payload = payload.Clone() };
            var (policy, evaluation) = await EvaluateAsync(tenant, job);
            if (policy is null)
            {
                return new DecisionOutcome(Outcome.Unavailable, current, "policy_unavailable", "The tenant has no published policy.");
            }
            if (evaluation.Decision == PolicyDecision.Deny)
            {
                deniedBy = evaluation.RuleId;
                return new DecisionOutcome(Outcome.Forbidden, current, "policy_denied",
                    $"The tenant's policy denies the amended job (rule {evaluation.RuleId ?? "(default)"}); nothing changed.");
            }

            var w = settings.Workflow;
            var ttl = evaluation.Ttl ?? settings.ApprovalTtl;
            var (step, stepAt) = NextStepOf(w, 0, now, 0);
            var next = current with
            {
                State = ApprovalStates.Pending,
                Version = current.Version + 1,
                JobId = ApprovalIds.NewJobId(now),
                Job = job,
                JobHash = JobHasher.Hash(tenant, job),
                PolicySnapshot = policy.Snapshot,
                RuleId = evaluation.RuleId,
                ExpiresAt = now + ttl,
                Lineage =
                [
                    .. current.Lineage,
                    new ApprovalVersion(current.Version, current.JobId, current.JobHash, current.PolicySnapshot, current.Job.Payload,
                        current.VersionSubmittedAt ?? current.CreatedAt,
                        current.ChangesRequestedBy, current.ChangesReason, current.Votes),
                ],
                Votes = [],
                EscalationLevel = 0,
                RemindersSent = 0,
                LevelReminders = 0,
                LevelStartedAt = now,
                NextStep = step,
                NextStepAt = stepAt,
                TimeoutOutcome = evaluation.OnTimeout ?? w.TimeoutOutcome,
                VersionSubmittedAt = now,
            };
            await store.IndexJobAsync(tenant, next.JobId, id);
            var entry = Entry(next, agent.Actor, "resubmitted", ApprovalStates.ChangesRequested, ApprovalStates.Pending);
            entry.Reason = $"version {next.Version} (resubmission {next.Version - 1} of {w.MaxResubmissions})";
            // What changed, for the audit history and the approvers' notification: masked where the tenant lists the field.
            var changes = Redaction.PayloadMasking.Describe(PayloadDiff.Compare(current.Job.Payload, job.Payload), settings.Redaction.Fields);
            entry.Details = $"previous job hash {current.JobHash}; changes: {(changes.Length == 0 ? "none" : changes)}";
            var result = await MoveAsync(entry, new TransitionRequest
            {
                Tenant = tenant,
                ApprovalId = id,
                From = ApprovalStates.ChangesRequested,
                To = ApprovalStates.Pending,
                ExpectedSeq = current.Seq,
                IdempotencyKey = current.IdempotencyKey,
                Now = now,
                Mode = TransitionMode.Update,
                Guard = new("resubmitBy", RedisApprovalStore.Ms(by)),
                Retention = ttl + options.Value.ExpirySafetyMargin,
                AuditJson = "",
                RemoveTimers = [RedisKeys.ResubmitTimer(id)],
                AddTimers = stepAt is { } due
                    ? [new(next.ExpiresAt, RedisKeys.ExpireTimer(id)), new(due, RedisKeys.StepTimer(id))]
                    : [new(next.ExpiresAt, RedisKeys.ExpireTimer(id))],
                Fields =
                [
                    .. RedisApprovalStore.WorkflowFields(next),
                    .. RedisApprovalStore.JobFields(job),
                    new("jobId", next.JobId),
                    new("jobHash", next.JobHash),
                    new("policySnapshot", next.PolicySnapshot),
                    new("ruleId", next.RuleId ?? ""),
                    new("expiresAt", RedisApprovalStore.Ms(next.ExpiresAt)),
                    new("resubmitBy", ""),
                    new("changesRequestedBy", ""),
                    new("changesReason", ""),
                    new("lastResubmitKey", idempotencyKey ?? ""),
                ],
                Notifications = Notify(settings, next, NotificationKinds.ApprovalRequested, settings.NotifiedAt(0), now,
                    $"Resubmitted (v{next.Version}): {job.Topic}",
                    $"{agent.Name} resubmitted {job.Topic} in {job.Env} as version {next.Version} after changes were requested" +
                    (changes.Length == 0 ? "." : $"; changes: {changes}."), state: ApprovalStates.Pending),
            }, cancellationToken, next.ExpiresAt);
            return result.Happened
                ? new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), "resubmitted")
                : await SettledNowAsync(tenant, id);
        }, cancellationToken);
        return new ResubmitOutcome(outcome, deniedBy);
    }
}

public sealed record ResubmitOutcome(DecisionOutcome Outcome, string? RuleId = null);
