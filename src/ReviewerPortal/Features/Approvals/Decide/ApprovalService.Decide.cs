using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

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
/// A reviewer approves or rejects, from any channel (portal, API, link, Slack, bulk): eligibility, delegation and four
/// eyes, then one transition script fenced on the approval's seq, job hash and policy snapshot (no lock: a race lost to
/// another change reads again), counted as a quorum vote where the tenant has one, audited and announced; approved
/// jobs are released to dispatch.
/// </summary>
public sealed partial class ApprovalService
{
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

    /// <summary>
    /// How often a decision reads the approval again when another change of it won the race (its seq moved between the
    /// read and the script): a concurrent quorum vote, a resubmission. Each attempt is one fenced script, so nothing
    /// waits on a lock; past this many the caller gets 423 and retries.
    /// </summary>
    private const int DecisionAttempts = 5;

    private async Task<DecisionOutcome> DecideOnceAsync(Caller caller, string id, Verdict verdict, DecideCommand command, CancellationToken cancellationToken)
    {
        if (await ApprovalAndSettingsAsync(caller, id) is not ({ } current, { } settings))
        {
            return DecisionOutcome.NotFound;
        }
        var outcome = await DecideReadAsync(caller, current, settings, verdict, command, cancellationToken);
        return outcome with { RedactionFields = settings.Redaction.Fields };
    }

    /// <summary>The decision on the approval as read, read again (up to <see cref="DecisionAttempts"/> times) when another change wins the race.</summary>
    private async Task<DecisionOutcome> DecideReadAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, DecideCommand command,
        CancellationToken cancellationToken)
    {
        var id = current.Id;
        var target = verdict == Verdict.Approve ? ApprovalStates.Approved : ApprovalStates.Rejected;
        for (var attempt = 1; ; attempt++)
        {
            // Eligibility is checked on the approval as read (its escalation level, its requester); the script's seq
            // fence makes that read the one the move happens on.
            if (await RefuseAsync(caller, settings, current, verdict == Verdict.Approve ? "approve" : "reject", cancellationToken, command.Via) is { } refused)
            {
                return refused;
            }
            if (attempt == 1)
            {
                // Secrets in the reason never reach the approval, its votes, the audit row or a notification (redacted once).
                command = command with { Reason = await redactor.RedactAsync(current.Tenant, settings.Redaction, command.Reason, "reason") };
            }
            if (current.State != ApprovalStates.Pending)
            {
                return Settled(current, target);
            }
            if (await DecideSeenAsync(caller, current, settings, verdict, target, command, cancellationToken) is { } outcome)
            {
                return outcome;
            }
            if (await store.GetApprovalAsync(current.Tenant, id) is not { } latest)
            {
                return DecisionOutcome.NotFound;
            }
            if (latest.Version != current.Version || latest.JobHash != current.JobHash || latest.PolicySnapshot != current.PolicySnapshot)
            {
                // What the reviewer decided on is gone (changes requested, a new version, a re-evaluation): never decide the new one.
                return Settled(latest, target);
            }
            if (attempt == DecisionAttempts)
            {
                return new DecisionOutcome(Outcome.Locked, latest, "lock_busy", "Other changes of this approval keep arriving; retry.");
            }
            current = latest;
        }
    }

    /// <summary>
    /// The decision on the approval as <paramref name="current"/> shows it, as one fenced transition; null when another
    /// change of the approval happened since it was read (the caller reads it again).
    /// </summary>
    private async Task<DecisionOutcome?> DecideSeenAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, string target,
        DecideCommand command, CancellationToken cancellationToken)
    {
        // The reviewer's step joins the agent's trace (linked to the reviewer's own request).
        using var span = Observability.PortalTracing.StartContinuing("approval " + (verdict == Verdict.Approve ? "approve" : "reject"),
            System.Diagnostics.ActivityKind.Internal, current.TraceParent, tags: [("reviewerportal.tenant", current.Tenant), ("reviewerportal.approval_id", current.Id)]);
        DecisionOutcome? outcome;
        try
        {
            outcome = await DecideSeenCoreAsync(caller, current, settings, verdict, target, command, cancellationToken);
        }
        catch (AuditConflictException)
        {
            // Another change claimed this step of the approval in the audit first: its seq is taken, read again.
            outcome = null;
        }
        span?.SetTag("reviewerportal.result", outcome is null ? "raced" : outcome.Code ?? outcome.Kind.ToString().ToLowerInvariant());
        return outcome;
    }

    /// <summary>The decision for a step that already holds the approval's lock (edit-and-approve): a lost race reads as it now is.</summary>
    private async Task<DecisionOutcome> DecideLockedAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, string target,
        DecideCommand command, CancellationToken cancellationToken) =>
        await DecideSeenAsync(caller, current, settings, verdict, target, command, cancellationToken)
        ?? (await store.GetApprovalAsync(current.Tenant, current.Id) is { } latest ? Settled(latest, target) : DecisionOutcome.NotFound);

    private async Task<DecisionOutcome?> DecideSeenCoreAsync(Caller caller, Approval current, TenantSettings settings, Verdict verdict, string target,
        DecideCommand command, CancellationToken cancellationToken)
    {
        var (tenant, id) = (current.Tenant, current.Id);
        var now = time.GetUtcNow();
        if (now >= current.ExpiresAt)
        {
            var expired = await ExpireDueAsync(current, now, cancellationToken);
            return expired is null ? null : Settled(expired, target);
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
                ReturnRecord = true,
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
                return new DecisionOutcome(Outcome.Ok, result.After, decides ? null : "vote_recorded", tally) { AuditHead = audit.HeadAfter(entry) };
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
                var expired = await ExpireDueAsync(current, now, cancellationToken);
                return expired is null ? null : Settled(expired, target);
            case "not_found":
                return DecisionOutcome.NotFound;
            default:
                // "stale" or "state": another change happened since the read.
                return null;
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
}
