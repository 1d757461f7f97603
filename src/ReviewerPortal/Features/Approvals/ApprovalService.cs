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
}

public enum Verdict { Approve, Reject }

/// <summary>
/// A reviewer's decision: the reason, the job hash and policy snapshot the reviewer saw (drift answers 409), and the
/// channel it came through (<c>portal</c> when null; <c>api</c>, <c>link</c>, <c>slack</c>, <c>bulk</c> …), which the
/// audit row records as <c>via: …</c>. Every channel goes through this one decision path.
/// </summary>
public sealed record DecideCommand(string? Reason, string? JobHash, string? PolicySnapshot, string? Via = null)
{
    /// <summary>The audit's details for this decision: <c>via: channel</c> joined to any other details.</summary>
    public string? DetailsWith(string? details) => AuditDetails.Join(Via is null ? null : "via: " + Via, details);
}

/// <summary>Audit details are short <c>; </c>-separated facts (<c>via: link</c>, a quorum tally, <c>for: alice</c>).</summary>
public static class AuditDetails
{
    public static string? Join(params string?[] parts)
    {
        var kept = parts.Where(p => !string.IsNullOrWhiteSpace(p)).ToArray();
        return kept.Length == 0 ? null : string.Join("; ", kept);
    }
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



    // ---------------------------------------------------------------- submit

    public async Task<SubmitOutcome> SubmitAsync(Caller agent, string? idempotencyKey, JobRequest job, CancellationToken cancellationToken,
        string? requestedBy = null)
    {
        var tenant = agent.AgentTenant!;
        var jobHash = JobHasher.Hash(tenant, job);
        if (idempotencyKey is not null && await ReplayAsync(tenant, idempotencyKey, jobHash) is { } replay)
        {
            return replay;
        }

        var settings = await tenants.GetSettingsAsync(tenant);
        if (settings is null)
        {
            return SubmitOutcome.Unavailable($"Tenant '{tenant}' is not configured.");
        }

        PolicyVersion? policy;
        PolicyEvaluation evaluation;
        var evaluating = System.Diagnostics.Stopwatch.GetTimestamp();
        using (var span = Observability.PortalTracing.Source.StartActivity("policy evaluate"))
        {
            try
            {
                span?.SetTag("reviewerportal.tenant", tenant);
                (policy, evaluation) = await EvaluateAsync(tenant, job).WaitAsync(options.Value.PolicyEvaluationTimeout, time, cancellationToken);
                span?.SetTag("reviewerportal.decision", evaluation.Decision.ToYaml());
                span?.SetTag("reviewerportal.rule_id", evaluation.RuleId);
            }
            catch (TimeoutException)
            {
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "over budget");
                logger.LogWarning("Policy evaluation for {Tenant} exceeded its budget; refused (fail closed)", tenant);
                return SubmitOutcome.Unavailable("Policy evaluation exceeded its time budget; nothing was stored. Retry later.");
            }
            finally
            {
                metrics.PolicyEvaluated(tenant, Observability.PortalMetrics.Since(evaluating));
            }
        }
        if (policy is null)
        {
            return SubmitOutcome.Unavailable($"Tenant '{tenant}' has no published policy; nothing was stored.");
        }
        metrics.Submitted(tenant, evaluation.Decision.ToYaml());

        var now = time.GetUtcNow();
        switch (evaluation.Decision)
        {
            case PolicyDecision.Deny:
                var denied = audit.NewEntry(tenant, agent.Actor, "job_denied");
                denied.PolicySnapshot = policy.Snapshot;
                denied.JobHash = jobHash;
                denied.Reason = $"rule {evaluation.RuleId ?? "(default)"}";
                denied.Details = job.Topic;
                await audit.AppendAsync(denied, cancellationToken);
                return new SubmitOutcome(SubmitKind.Denied, RuleId: evaluation.RuleId, Snapshot: policy.Snapshot);

            case PolicyDecision.Throttle:
                var rate = evaluation.Rate!;
                var (admitted, retryAfter) = await store.ThrottleAsync(tenant, evaluation.RuleId ?? "default", rate.Limit, rate.Window, now);
                if (!admitted)
                {
                    return new SubmitOutcome(SubmitKind.Throttled, RuleId: evaluation.RuleId, RetryAfter: retryAfter, Snapshot: policy.Snapshot);
                }
                return await AllowAsync(agent, idempotencyKey, job, policy, evaluation, settings, jobHash, now, cancellationToken);

            case PolicyDecision.Allow:
                return await AllowAsync(agent, idempotencyKey, job, policy, evaluation, settings, jobHash, now, cancellationToken);

            default:
                return await ParkAsync(agent, idempotencyKey, job, policy, evaluation, settings, jobHash, now, requestedBy, cancellationToken);
        }
    }

    private async Task<(PolicyVersion?, PolicyEvaluation)> EvaluateAsync(string tenant, JobRequest job)
    {
        var policy = await policies.GetCurrentAsync(tenant);
        if (policy is null)
        {
            return (null, new PolicyEvaluation(PolicyDecision.RequireHuman, null, null, null));
        }
        return (policy, PolicyEvaluator.Evaluate(policy.Document, new JobFacts(job.Topic, job.Env, job.Channel, job.Payload), time.GetUtcNow()));
    }

    /// <summary>
    /// The first answer to a submit with this key, if it was made with the same job (any version of it); a key reused
    /// for another job is refused, so a retry can never be mistaken for new work or new work for a retry.
    /// </summary>
    private async Task<SubmitOutcome?> ReplayAsync(string tenant, string idempotencyKey, string jobHash)
    {
        var reference = await store.GetIdempotentReferenceAsync(tenant, idempotencyKey);
        if (reference is null)
        {
            return null;
        }
        if (reference.StartsWith("approval:", StringComparison.Ordinal)
            && await store.GetApprovalAsync(tenant, reference["approval:".Length..]) is { } approval)
        {
            return approval.JobHash == jobHash || approval.Lineage.Any(v => v.JobHash == jobHash)
                ? new SubmitOutcome(SubmitKind.Parked, Approval: approval, Replayed: true, Snapshot: approval.PolicySnapshot)
                : KeyReused(idempotencyKey, approval.Id);
        }
        if (reference.StartsWith("job:", StringComparison.Ordinal)
            && await store.GetJobAsync(tenant, reference["job:".Length..]) is { } job)
        {
            return job.JobHash == jobHash
                ? new SubmitOutcome(SubmitKind.Allowed, Job: job, Replayed: true, Snapshot: job.PolicySnapshot)
                : KeyReused(idempotencyKey, job.Id);
        }
        return null;
    }

    private static SubmitOutcome KeyReused(string key, string firstId) => new(SubmitKind.KeyReused,
        Detail: $"Idempotency key '{key}' was first used for {firstId}, a different job (payload, topic or env); use a new key for new work.");

    private async Task<SubmitOutcome> AllowAsync(Caller agent, string? idempotencyKey, JobRequest job, PolicyVersion policy,
        PolicyEvaluation evaluation, TenantSettings settings, string jobHash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var allowed = new AllowedJob
        {
            Id = ApprovalIds.NewJobId(now),
            Tenant = agent.AgentTenant!,
            Job = job,
            Submitter = agent.Name,
            PolicySnapshot = policy.Snapshot,
            JobHash = jobHash,
            RuleId = evaluation.RuleId,
            CreatedAt = now,
            TraceParent = Observability.PortalTracing.CurrentTraceParent(),
        };
        var entry = audit.NewEntry(allowed.Tenant, agent.Actor, "job_allowed");
        entry.JobId = allowed.Id;
        entry.PolicySnapshot = policy.Snapshot;
        entry.JobHash = jobHash;
        entry.Reason = evaluation.Until is { } until
            ? $"standing approval {evaluation.RuleId} until {PolicyRule.FormatUntil(until)}"
            : $"rule {evaluation.RuleId ?? "(default)"}";
        entry.Details = job.Topic;
        var created = await audit.RecordAsync(entry, async json =>
        {
            var result = await store.CreateJobAsync(allowed, idempotencyKey, options.Value.IdempotencyWindow, json,
                dispatch: settings.Dispatch is not null);
            return (result.Status == CreateStatus.Created, result);
        }, cancellationToken);
        if (created.Status == CreateStatus.Duplicate)
        {
            return await ReplayAsync(allowed.Tenant, idempotencyKey!, jobHash) ?? SubmitOutcome.Unavailable("Idempotency record is dangling.");
        }
        if (settings.Dispatch is not null)
        {
            dispatchSignal.Wake();
        }
        return new SubmitOutcome(SubmitKind.Allowed, Job: allowed, RuleId: evaluation.RuleId, Snapshot: policy.Snapshot);
    }

    private async Task<SubmitOutcome> ParkAsync(Caller agent, string? idempotencyKey, JobRequest job, PolicyVersion policy,
        PolicyEvaluation evaluation, TenantSettings settings, string jobHash, DateTimeOffset now, string? requestedBy,
        CancellationToken cancellationToken)
    {
        var ttl = evaluation.Ttl ?? settings.ApprovalTtl;
        var (step, stepAt) = NextStepOf(settings.Workflow, 0, now, 0);
        var approval = new Approval
        {
            RequestedBy = requestedBy,
            TimeoutOutcome = evaluation.OnTimeout ?? settings.Workflow.TimeoutOutcome,
            LevelStartedAt = now,
            NextStep = step,
            NextStepAt = stepAt,
            Id = ApprovalIds.NewApprovalId(now),
            Tenant = settings.Tenant,
            JobId = ApprovalIds.NewJobId(now),
            State = ApprovalStates.Pending,
            Job = job,
            Submitter = agent.Name,
            IdempotencyKey = idempotencyKey,
            PolicySnapshot = policy.Snapshot,
            JobHash = jobHash,
            RuleId = evaluation.RuleId,
            CreatedAt = now,
            ExpiresAt = now + ttl,
            // The agent's trace (this request's span, under the traceparent it sent): the steps after the wait continue it.
            TraceParent = Observability.PortalTracing.CurrentTraceParent(),
        };
        var entry = Entry(approval, agent.Actor, "submitted", null, ApprovalStates.Pending);
        entry.ApprovalSeq = approval.Seq;
        entry.Reason = $"rule {evaluation.RuleId ?? "(default)"}; expires {approval.ExpiresAt:O}";
        var notifications = Notify(settings, approval, Notifications.NotificationKinds.ApprovalRequested, settings.NotifiedAt(0), now,
            $"Approval requested: {job.Topic} in {job.Env}",
            $"{agent.Name}{(requestedBy is null ? "" : $" (for {requestedBy})")} asks to run {job.Topic} in {job.Env}; it expires {approval.ExpiresAt:u}.");
        var created = await audit.RecordAsync(entry, async json =>
        {
            // The idempotency key lives exactly as long as the approval it points to (extended with it at each move).
            var result = await store.CreateApprovalAsync(approval, ttl + options.Value.ExpirySafetyMargin,
                ttl + options.Value.ExpirySafetyMargin, json, notifications);
            return (result.Status == CreateStatus.Created, result);
        }, cancellationToken);
        if (created.Status == CreateStatus.Duplicate)
        {
            return await ReplayAsync(approval.Tenant, idempotencyKey!, jobHash) ?? SubmitOutcome.Unavailable("Idempotency record is dangling.");
        }
        Woke(notifications);
        await feed.PublishAsync(new ApprovalChange(approval.Tenant, approval.Id, approval.State, "submitted", now, approval.NextTimer?.DueAt));
        return new SubmitOutcome(SubmitKind.Parked, Approval: approval, RuleId: evaluation.RuleId, Snapshot: policy.Snapshot);
    }

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

    // ---------------------------------------------------------------- decide

    public async Task<DecisionOutcome> DecideAsync(Caller caller, string id, Verdict verdict, DecideCommand command, CancellationToken cancellationToken)
    {
        var outcome = await DecideOnceAsync(caller, id, verdict, command, cancellationToken);
        var counter = outcome.Code switch
        {
            "already_approved" => Counters.AlreadyApproved,
            "already_rejected" => Counters.AlreadyRejected,
            "job_changed" => Counters.JobMismatch,
            "snapshot_changed" => Counters.SnapshotMismatch,
            _ => null,
        };
        if (counter is not null && outcome.Approval is { } counted)
        {
            await counters.IncrementAsync(counted.Tenant, counter);
        }
        return outcome;
    }

    private async Task<DecisionOutcome> DecideOnceAsync(Caller caller, string id, Verdict verdict, DecideCommand command, CancellationToken cancellationToken)
    {
        var tenant = await TenantOfAsync(caller, id);
        var settings = tenant is null ? null : await tenants.GetSettingsAsync(tenant);
        var current = tenant is null || settings is null ? null : await store.GetApprovalAsync(tenant, id);
        if (tenant is null || settings is null || current is null)
        {
            return DecisionOutcome.NotFound;
        }
        if (await RefuseAsync(caller, settings, current, verdict == Verdict.Approve ? "approve" : "reject", cancellationToken, command.Via) is { } refused)
        {
            return refused;
        }
        // Secrets in the reason never reach the approval, its votes, the audit row or a notification.
        command = command with { Reason = await redactor.RedactAsync(tenant, settings.Redaction, command.Reason, "reason") };

        var target = verdict == Verdict.Approve ? ApprovalStates.Approved : ApprovalStates.Rejected;
        if (current.State != ApprovalStates.Pending)
        {
            return Settled(current, target);
        }

        return await UnderLockAsync(current, current => DecideLockedAsync(caller, current, settings, verdict, target, command, cancellationToken), cancellationToken);
    }

    private async Task<DecisionOutcome> DecideLockedAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, string target,
        DecideCommand command, CancellationToken cancellationToken)
    {
        // The reviewer's step joins the agent's trace (linked to the reviewer's own request).
        using var span = Observability.PortalTracing.StartContinuing("approval " + (verdict == Verdict.Approve ? "approve" : "reject"),
            System.Diagnostics.ActivityKind.Internal, current.TraceParent, tags: [("reviewerportal.tenant", current.Tenant), ("reviewerportal.approval_id", current.Id)]);
        var outcome = await DecideLockedCoreAsync(caller, current, settings, verdict, target, command, cancellationToken);
        span?.SetTag("reviewerportal.result", outcome.Code ?? outcome.Kind.ToString().ToLowerInvariant());
        return outcome;
    }

    private async Task<DecisionOutcome> DecideLockedCoreAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, string target,
        DecideCommand command, CancellationToken cancellationToken)
    {
        var (tenant, id) = (current.Tenant, current.Id);
        // Checked again on what the lock protects: a resubmission in between starts over at escalation level 0.
        if (await RefuseAsync(caller, settings, current, verdict == Verdict.Approve ? "approve" : "reject", cancellationToken, command.Via) is { } refused)
        {
            return refused;
        }
        if (current.State != ApprovalStates.Pending)
        {
            return Settled(current, target);
        }

        var now = time.GetUtcNow();
        if (now >= current.ExpiresAt)
        {
            var expired = await ExpireLockedAsync(current, now, cancellationToken);
            return Settled(expired ?? current, target);
        }

        // Quorum: the vote counts once per seat and once per person; the approval moves when enough distinct people agree.
        // A delegate's vote takes the seat of the approver who is away (Vote.By), never a second one.
        var actsFor = (await access.DecisionRightAsync(caller, settings, current, verdict == Verdict.Approve, cancellationToken)).ActsFor;
        var seat = actsFor ?? caller.Name;
        var verdictText = verdict == Verdict.Approve ? "approve" : "reject";
        var quorum = settings.Workflow.Quorum;
        var votes = current.Votes;
        var decides = true;
        string? tally = null;
        if (quorum is not null)
        {
            if (votes.FirstOrDefault(v => v.By != seat && v.Voter == caller.Name) is { } elsewhere)
            {
                return new DecisionOutcome(Outcome.Conflict, current, "already_voted",
                    $"'{caller.Name}' already voted on this approval as {elsewhere.Display}: one person, one vote ({Tally(votes, quorum)}).");
            }
            var mine = votes.FirstOrDefault(v => v.By == seat);
            if (mine is not null && mine.Verdict == verdictText)
            {
                return new DecisionOutcome(Outcome.AlreadyDone, current, "already_" + target,
                    $"{(actsFor is null ? "Your" : $"{actsFor}'s")} {verdictText} vote is already counted ({Tally(votes, quorum)}).");
            }
            else if (mine is not null && actsFor is not null && mine.Delegate is null)
            {
                return new DecisionOutcome(Outcome.Conflict, current, "already_voted",
                    $"'{actsFor}' voted {mine.Verdict} themselves; their delegate does not change it ({Tally(votes, quorum)}).");
            }
            votes = [.. votes.Where(v => v.By != seat), new Vote(seat, verdictText, now, command.Reason, actsFor is null ? null : caller.Name)];
            decides = verdict == Verdict.Approve
                ? votes.Count(v => v.Verdict == "approve") >= quorum.Required
                : votes.Count(v => v.Verdict == "reject") >= quorum.RejectsToReject;
            tally = Tally(votes, quorum);
        }
        var to = decides ? target : ApprovalStates.Pending;
        var action = decides ? (verdict == Verdict.Approve ? "approved" : "rejected") : "vote_" + verdictText;
        var entry = Entry(current, caller.Actor, action, ApprovalStates.Pending, to);
        entry.Reason = command.Reason;
        entry.Details = command.DetailsWith(AuditDetails.Join(actsFor is null ? null : "for: " + actsFor, tally));
        List<KeyValuePair<string, string>> fields = [new("votes", RedisApprovalStore.VotesJson(votes))];
        if (decides)
        {
            fields.Add(new("decidedAt", RedisApprovalStore.Ms(now)));
            fields.Add(new("decidedBy", caller.Name));
            fields.Add(new("reason", command.Reason ?? ""));
        }
        var notifications = decides
            ? Notify(settings, current, Notifications.NotificationKinds.Decision, Requesters(current), now,
                $"{target}: {current.Job.Topic}", $"{caller.Name}{(actsFor is null ? "" : " for " + actsFor)} {target} {current.Job.Topic} in {current.Job.Env}{(command.Reason is null ? "" : $": {command.Reason}")}.",
                state: target)
            : [];
        var release = decides && verdict == Verdict.Approve && settings.Dispatch is not null;
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
                Mode = TransitionMode.Decide,
                SeenSnapshot = command.PolicySnapshot,
                SeenJobHash = command.JobHash,
                // Drift of the tenant's policy blocks a release; a rejection is always safe.
                RequireCurrentPolicy = verdict == Verdict.Approve,
                Dispatch = release,
                Retention = decides ? Retention : null,
                ClearTimers = decides,
                // A quorum vote is checked against the votes it was counted with.
                Guard = quorum is null ? null : new("votes", RedisApprovalStore.VotesJson(current.Votes)),
                AuditJson = json,
                Fields = fields,
                Notifications = notifications,
            });
            return (r.Happened, r);
        }, cancellationToken);

        switch (result.Status)
        {
            case "ok":
                Woke(notifications);
                if (decides)
                {
                    Closed(current, to, now);
                }
                await feed.PublishAsync(new ApprovalChange(tenant, id, to, entry.Action, now, null));
                if (release)
                {
                    dispatchSignal.Wake();
                }
                return new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), decides ? null : "vote_recorded", tally);
            case "job_changed":
                await RefusedAsync(current, caller, verdict, "job_changed", cancellationToken, command.Via);
                return new DecisionOutcome(Outcome.Conflict, current, "job_changed",
                    "The job hash you reviewed does not match this approval's job.");
            case "snapshot_changed":
                await RefusedAsync(current, caller, verdict, "snapshot_changed", cancellationToken, command.Via);
                return new DecisionOutcome(Outcome.Conflict, current, "snapshot_changed",
                    command.PolicySnapshot is not null && command.PolicySnapshot != current.PolicySnapshot
                        ? "The policy snapshot you reviewed is not this approval's snapshot."
                        : $"The tenant's policy changed since submit (now {result.Value}); re-evaluate the approval first.");
            case "deadline_passed":
                var expired = await ExpireLockedAsync(current, now, cancellationToken);
                return Settled(expired ?? current, target);
            default:
                return await store.GetApprovalAsync(tenant, id) is { } latest ? Settled(latest, target) : DecisionOutcome.NotFound;
        }
    }

    private static string Tally(IReadOnlyList<Vote> votes, Tenants.QuorumSettings quorum) =>
        $"{votes.Count(v => v.Verdict == "approve")} of {quorum.Required} approvals needed, {votes.Count(v => v.Verdict == "reject")} of {quorum.RejectsToReject} rejections";

    /// <summary>
    /// 403 for a person who may not take this step (not an approver at the approval's escalation level, or the requester
    /// approving their own request); the refused attempt is audited.
    /// </summary>
    private async Task<DecisionOutcome?> RefuseAsync(Caller caller, TenantSettings settings, Approval approval, string step, CancellationToken cancellationToken,
        string? via = null)
    {
        // Eligibility, delegation (an away approver's delegate) and four eyes: see TenantAccess.DecisionRightAsync.
        var right = await access.DecisionRightAsync(caller, settings, approval, step == "approve", cancellationToken);
        if (right.Allowed)
        {
            return null;
        }
        var entry = Entry(approval, caller.Actor, step + "_refused", approval.State, approval.State);
        entry.Reason = right.Code;
        entry.Details = AuditDetails.Join(via is null ? null : "via: " + via, right.AuditDetail);
        await audit.AppendAsync(entry, cancellationToken);
        return new DecisionOutcome(Outcome.Forbidden, approval, right.Code, right.Detail);
    }

    private static DecisionOutcome Settled(Approval approval, string target)
    {
        if (approval.State == target)
        {
            return new DecisionOutcome(Outcome.AlreadyDone, approval, "already_" + target);
        }
        return new DecisionOutcome(Outcome.Conflict, approval, approval.State,
            approval.State == ApprovalStates.Pending
                ? "The approval is still pending."
                : $"The approval is already {approval.State}.");
    }

    private async Task RefusedAsync(Approval approval, Caller caller, Verdict verdict, string code, CancellationToken cancellationToken,
        string? via = null)
    {
        var entry = Entry(approval, caller.Actor, (verdict == Verdict.Approve ? "approve" : "reject") + "_refused", approval.State, approval.State);
        entry.Reason = code;
        entry.Details = via is null ? null : "via: " + via;
        await audit.AppendAsync(entry, cancellationToken);
    }

    // ---------------------------------------------------------------- re-evaluate

    /// <summary>
    /// Takes a fresh snapshot under the current policy (the way out of <c>snapshot_changed</c>): require_human keeps
    /// the approval pending with the new snapshot; deny rejects it; allow (or throttle) still needs the human who
    /// asked, and that is recorded.
    /// </summary>
    public async Task<DecisionOutcome> ReevaluateAsync(Caller caller, string id, string? reason, CancellationToken cancellationToken)
    {
        var tenant = await TenantOfAsync(caller, id);
        var settings = tenant is null ? null : await tenants.GetSettingsAsync(tenant);
        var seen = tenant is null || settings is null ? null : await store.GetApprovalAsync(tenant, id);
        if (tenant is null || settings is null || seen is null)
        {
            return DecisionOutcome.NotFound;
        }
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

    // ---------------------------------------------------------------- expiry

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
        return await ExpireLockedAsync(current, time.GetUtcNow(), cancellationToken) is not null;
    }

    private async Task<Approval?> ExpireLockedAsync(Approval current, DateTimeOffset now, CancellationToken cancellationToken)
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

public enum SubmitKind { Allowed, Denied, Throttled, Parked, KeyReused, Unavailable }

public sealed record SubmitOutcome(
    SubmitKind Kind,
    Approval? Approval = null,
    AllowedJob? Job = null,
    string? RuleId = null,
    TimeSpan? RetryAfter = null,
    string? Snapshot = null,
    bool Replayed = false,
    string? Detail = null)
{
    public static SubmitOutcome Unavailable(string detail) => new(SubmitKind.Unavailable, Detail: detail);
}
