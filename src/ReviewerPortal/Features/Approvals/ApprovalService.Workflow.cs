using System.Text.Json;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// What a workflow engine would do for an approval, on Redis timers: reminders, escalation, the timeout outcome,
/// request changes → resubmit (versions with lineage), withdrawal. Each timer is a member of the tenant's timer set,
/// fired under the approval's lock by one atomic transition guarded by the due time it was scheduled for, so with any
/// number of app instances each step happens once; a step that fell due while every instance was down fires at start.
/// </summary>
public sealed partial class ApprovalService
{
    public const string StepReminder = "reminder";
    public const string StepEscalation = "escalation";
    public const string StepTimeout = "timeout";

    /// <summary>
    /// The next step of an approval at escalation <paramref name="level"/>, whose SLA started at <paramref name="levelStart"/>
    /// with <paramref name="levelReminders"/> reminders sent: a reminder while the SLA runs, then escalation to the next
    /// level, then the timeout. (null, null) when the level has no SLA.
    /// </summary>
    public static (string? Step, DateTimeOffset? At) NextStepOf(WorkflowSettings w, int level, DateTimeOffset levelStart, int levelReminders)
    {
        if (w.SlaOfLevel(level) is not { } sla)
        {
            return (null, null);
        }
        var end = levelStart + sla;
        if (w.ReminderInterval is { } every && levelReminders < w.MaxReminders && levelStart + every * (levelReminders + 1) < end)
        {
            return (StepReminder, levelStart + every * (levelReminders + 1));
        }
        return (level < w.Escalation.Count ? StepEscalation : StepTimeout, end);
    }

    // ---------------------------------------------------------------- timers

    /// <summary>Fires an approval's due reminder, escalation or timeout (the timer service calls it; safe on every instance).</summary>
    /// <param name="timerDueMs">The due time of the timer that fired (its removal is fenced on it); null when called to catch up.</param>
    public async Task<bool> FireStepAsync(string tenant, string id, CancellationToken cancellationToken, long? timerDueMs = null)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, id), cancellationToken, TimeSpan.FromSeconds(2));
        if (held is null)
        {
            return false;
        }
        var current = await store.GetApprovalAsync(tenant, id);
        var settings = await tenants.GetSettingsAsync(tenant);
        var now = time.GetUtcNow();
        if (current is null || settings is null || current.State != ApprovalStates.Pending || current.NextStepAt is not { } due)
        {
            if (timerDueMs is { } seen)
            {
                await store.MoveTimerAsync(tenant, RedisKeys.StepTimer(id), seen, null);
            }
            return false;
        }
        if (due > now || due >= current.ExpiresAt)
        {
            // Rescheduled since (the timer set holds the new due time), or the deadline comes first and expiry wins.
            return false;
        }
        var guard = new KeyValuePair<string, string>("nextStepAt", RedisApprovalStore.Ms(due));
        return current.NextStep switch
        {
            StepReminder => await RemindAsync(current, settings, guard, now, cancellationToken),
            // A level removed from the ladder since the step was scheduled: the ladder ends here, so the timeout applies.
            StepEscalation when settings.Workflow.SlaOfLevel(current.EscalationLevel + 1) is not null =>
                await EscalateAsync(current, settings, guard, now, cancellationToken),
            _ => await TimeOutAsync(current, settings, guard, now, cancellationToken),
        };
    }

    private async Task<bool> RemindAsync(Approval a, TenantSettings settings, KeyValuePair<string, string> guard, DateTimeOffset now, CancellationToken ct)
    {
        var levelReminders = a.LevelReminders + 1;
        var (step, at) = NextStepOf(settings.Workflow, a.EscalationLevel, a.LevelStartedAt ?? a.CreatedAt, levelReminders);
        var people = settings.NotifiedAt(a.EscalationLevel);
        var entry = Entry(a, "system:timer", "reminder_sent", ApprovalStates.Pending, ApprovalStates.Pending);
        entry.Reason = $"reminder {levelReminders} of {settings.Workflow.MaxReminders} at level {a.EscalationLevel} to {string.Join(", ", people)}";
        var result = await MoveAsync(entry, Step(a, guard, now, step, at,
        [
            new("levelReminders", levelReminders.ToString()),
            new("remindersSent", (a.RemindersSent + 1).ToString()),
        ], Notify(settings, a, NotificationKinds.Reminder, people, now, $"Reminder: {a.Job.Topic} is waiting for you",
            $"{a.Job.Topic} in {a.Job.Env} from {a.Submitter} has waited {DurationText.Format(TimeSpan.FromMinutes(Math.Floor((now - a.CreatedAt).TotalMinutes)))} (reminder {levelReminders}).")), ct);
        if (result.Happened)
        {
            await counters.IncrementAsync(a.Tenant, Counters.RemindersSent);
        }
        return result.Happened;
    }

    private async Task<bool> EscalateAsync(Approval a, TenantSettings settings, KeyValuePair<string, string> guard, DateTimeOffset now, CancellationToken ct)
    {
        var level = a.EscalationLevel + 1;
        var (step, at) = NextStepOf(settings.Workflow, level, now, 0);
        var people = settings.NotifiedAt(level);
        var entry = Entry(a, "system:timer", "escalated", ApprovalStates.Pending, ApprovalStates.Pending);
        entry.Reason = $"SLA of level {a.EscalationLevel} ran out; level {level} ({string.Join(", ", people)}) may now decide, " +
                       $"SLA {DurationText.Format(settings.Workflow.SlaOfLevel(level)!.Value)}";
        var result = await MoveAsync(entry, Step(a, guard, now, step, at,
        [
            new("escalationLevel", level.ToString()),
            new("levelStartedAt", RedisApprovalStore.Ms(now)),
            new("levelReminders", "0"),
        ], Notify(settings, a, NotificationKinds.Escalation, people, now, $"Escalated to you: {a.Job.Topic}",
            $"Nobody decided {a.Job.Topic} in {a.Job.Env} within the SLA; you may decide it now (escalation level {level}).",
            level: level)), ct);
        if (result.Happened)
        {
            await counters.IncrementAsync(a.Tenant, Counters.Escalations);
        }
        return result.Happened;
    }

    private TransitionRequest Step(Approval a, KeyValuePair<string, string> guard, DateTimeOffset now, string? step, DateTimeOffset? at,
        List<KeyValuePair<string, string>> fields, IReadOnlyList<Notification> notifications) => new()
    {
        Tenant = a.Tenant,
        ApprovalId = a.Id,
        From = ApprovalStates.Pending,
        To = ApprovalStates.Pending,
        Now = now,
        Mode = TransitionMode.Update,
        ExpectedSeq = a.Seq,
        Guard = guard,
        AuditJson = "",
        RemoveTimers = at is null ? [RedisKeys.StepTimer(a.Id)] : [],
        AddTimers = at is { } due ? [new(due, RedisKeys.StepTimer(a.Id))] : [],
        Fields = [.. fields, new("nextStep", step ?? ""), new("nextStepAt", at is { } d ? RedisApprovalStore.Ms(d) : "")],
        Notifications = notifications,
    };

    private async Task<bool> TimeOutAsync(Approval a, TenantSettings settings, KeyValuePair<string, string> guard, DateTimeOffset now, CancellationToken ct)
    {
        var outcome = a.TimeoutOutcome ?? settings.Workflow.TimeoutOutcome;
        var to = outcome switch
        {
            TimeoutOutcomes.Approve => ApprovalStates.Approved,
            TimeoutOutcomes.Escalate => ApprovalStates.Escalated,
            _ => ApprovalStates.Rejected,
        };
        var levels = a.EscalationLevel + 1;
        var why = $"no decision within the SLA of {levels} level{(levels == 1 ? "" : "s")}; timeout outcome {outcome}";
        var result = await MoveAsync(TimedOut(a, to, why), TimeoutMove(a, settings, guard, now, to, why), ct);
        if (result.Status == "snapshot_changed" && to == ApprovalStates.Approved)
        {
            // Fail closed: the policy the approval was bound to is no longer in force, so nothing is released on a timer.
            why += $"; the policy changed since submit (now {result.Value}), so it is rejected instead";
            result = await MoveAsync(TimedOut(a, ApprovalStates.Rejected, why), TimeoutMove(a, settings, guard, now, ApprovalStates.Rejected, why), ct);
        }
        if (result.Happened)
        {
            await counters.IncrementAsync(a.Tenant, Counters.TimedOut);
        }
        return result.Happened;
    }

    private AuditEntry TimedOut(Approval a, string to, string why)
    {
        var entry = Entry(a, "system:timer", "timed_out", ApprovalStates.Pending, to);
        entry.Reason = why;
        return entry;
    }

    private TransitionRequest TimeoutMove(Approval a, TenantSettings settings, KeyValuePair<string, string> guard, DateTimeOffset now, string to, string why) =>
        Closing(a, to, now, "system:timeout", why, to == ApprovalStates.Approved ? TransitionMode.Decide : TransitionMode.Update,
            Notify(settings, a, NotificationKinds.Timeout, [.. settings.EligibleAt(a.EscalationLevel), .. Requesters(a)], now,
                $"Timed out ({to}): {a.Job.Topic}", $"{a.Job.Topic} in {a.Job.Env}: {why}.", state: to)) with
        {
            RequireCurrentPolicy = to == ApprovalStates.Approved,
            Dispatch = to == ApprovalStates.Approved && settings.Dispatch is not null,
            Guard = guard,
        };

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

    // ---------------------------------------------------------------- request changes, resubmit, withdraw

    /// <summary>A reviewer sends the job back with a comment; the submitter may resubmit within the window (or it ends rejected).</summary>
    public async Task<DecisionOutcome> RequestChangesAsync(Caller caller, string id, string reason, CancellationToken cancellationToken)
    {
        var tenant = await TenantOfAsync(caller, id);
        var settings = tenant is null ? null : await tenants.GetSettingsAsync(tenant);
        var current = tenant is null || settings is null ? null : await store.GetApprovalAsync(tenant, id);
        if (tenant is null || settings is null || current is null)
        {
            return DecisionOutcome.NotFound;
        }
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
            var expired = await ExpireLockedAsync(current, now, cancellationToken) ?? current;
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

    /// <summary>The submitter takes the request back while it is pending or waiting for a resubmission. Final.</summary>
    public async Task<DecisionOutcome> WithdrawAsync(Caller agent, string id, string? reason, CancellationToken cancellationToken)
    {
        var tenant = agent.AgentTenant;
        var current = tenant is null || !ApprovalIds.LooksValid(id) ? null : await store.GetApprovalAsync(tenant, id);
        if (tenant is null || current is null)
        {
            return DecisionOutcome.NotFound;
        }
        if (current.Submitter != agent.Name)
        {
            return new DecisionOutcome(Outcome.Forbidden, current, "not_the_submitter", $"Only the submitter ('{current.Submitter}') may withdraw this approval.");
        }
        return await UnderLockAsync(current, async current =>
        {
            var settings = await tenants.GetSettingsAsync(tenant);
            if (settings is null)
            {
                return DecisionOutcome.NotFound;
            }
            if (current.State == ApprovalStates.Withdrawn)
            {
                return new DecisionOutcome(Outcome.AlreadyDone, current, "already_withdrawn");
            }
            if (!ApprovalStates.IsOpen(current.State))
            {
                return new DecisionOutcome(Outcome.Conflict, current, current.State, $"The approval is already {current.State}.");
            }
            var now = time.GetUtcNow();
            reason = await redactor.RedactAsync(tenant, settings.Redaction, reason, "reason");
            var entry = Entry(current, agent.Actor, "withdrawn", current.State, ApprovalStates.Withdrawn);
            entry.Reason = reason;
            var result = await MoveAsync(entry, Closing(current, ApprovalStates.Withdrawn, now, agent.Name, reason ?? "withdrawn", TransitionMode.Update,
                Notify(settings, current, NotificationKinds.Decision, settings.EligibleAt(current.EscalationLevel), now,
                    $"Withdrawn: {current.Job.Topic}", $"{agent.Name} withdrew {current.Job.Topic} in {current.Job.Env}{(reason is null ? "" : $": {reason}")}.",
                    state: ApprovalStates.Withdrawn)), cancellationToken);
            return result.Happened
                ? new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), "withdrawn")
                : await SettledNowAsync(tenant, id);
        }, cancellationToken);
    }

    private async Task<DecisionOutcome> SettledNowAsync(string tenant, string id) =>
        await store.GetApprovalAsync(tenant, id) is { } latest
            ? new DecisionOutcome(Outcome.Conflict, latest, latest.State, $"The approval is {latest.State}.")
            : DecisionOutcome.NotFound;

    // ---------------------------------------------------------------- shared

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

public sealed record ResubmitOutcome(DecisionOutcome Outcome, string? RuleId = null);
