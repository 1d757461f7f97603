using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// An agent submits a job: the idempotency key is replayed, the tenant's policy decides at once (allow, deny, throttle),
/// and a job that needs a human is parked as a pending approval bound to its policy snapshot and job hash.
/// </summary>
public sealed partial class ApprovalService
{
    /// <summary>The audit action of a job the policy allowed at once (the reconciler finds releases by it).</summary>
    public const string JobAllowedAction = "job_allowed";

    public async Task<SubmitOutcome> SubmitAsync(Caller agent, string? idempotencyKey, JobRequest job, CancellationToken cancellationToken,
        string? requestedBy = null)
    {
        var tenant = agent.AgentTenant!;
        var jobHash = JobHasher.Hash(tenant, job);
        // The key's record, the settings revision and the current policy, in one round trip; settings and policy
        // versions already seen come from this instance's caches.
        var reads = await store.ReadForSubmitAsync(tenant, idempotencyKey);
        if (idempotencyKey is not null && reads.Reference is { } reference && await ReplayAsync(tenant, idempotencyKey, jobHash, reference) is { } replay)
        {
            return replay;
        }

        var settings = await tenants.GetSettingsAsync(tenant, reads.SettingsRev);
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
                (policy, evaluation) = await EvaluateAsync(tenant, reads.PolicySnapshot, job).WaitAsync(options.Value.PolicyEvaluationTimeout, time, cancellationToken);
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

    private async Task<(PolicyVersion?, PolicyEvaluation)> EvaluateAsync(string tenant, JobRequest job) =>
        await EvaluateAsync(tenant, await policies.GetCurrentSnapshotAsync(tenant), job);

    /// <summary>The job under policy <paramref name="snapshot"/> (the current one as just read; null: none published).</summary>
    private async Task<(PolicyVersion?, PolicyEvaluation)> EvaluateAsync(string tenant, string? snapshot, JobRequest job)
    {
        var policy = snapshot is null ? null : await policies.GetVersionAsync(tenant, snapshot);
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
    private async Task<SubmitOutcome?> ReplayAsync(string tenant, string idempotencyKey, string jobHash, string? reference = null)
    {
        reference ??= await store.GetIdempotentReferenceAsync(tenant, idempotencyKey);
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
        var entry = audit.NewEntry(allowed.Tenant, agent.Actor, JobAllowedAction);
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
