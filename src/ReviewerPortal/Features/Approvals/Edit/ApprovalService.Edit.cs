using System.Text.Json;
using System.Text.Json.Nodes;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Approvals;

/// <summary>The answer to an edit-and-approve: the decision's outcome, or the payload path at fault (400, nothing changed).</summary>
public sealed record EditOutcome(DecisionOutcome Outcome, string? InvalidField = null, string? Problem = null, string? RuleId = null);

/// <summary>
/// Edit before approve (issue 16): a reviewer changes payload fields and approves the edited job in one step, under the
/// approval's lock and fenced on its seq like every other transition. The edit is a new version (as a resubmission:
/// version + 1, new job id and hash, the old version in the lineage), judged by the tenant's current policy (a deny
/// stops it), audited with the field diff and <c>edited: true</c>; the votes start afresh with the editor's.
/// </summary>
public sealed partial class ApprovalService
{
    public async Task<EditOutcome> EditAndApproveAsync(Caller caller, string id, JsonElement payload, DecideCommand command, CancellationToken cancellationToken)
    {
        if (await ApprovalAndSettingsAsync(caller, id) is not ({ } current, { } settings))
        {
            return new EditOutcome(DecisionOutcome.NotFound);
        }
        var tenant = current.Tenant;
        if (await RefuseAsync(caller, settings, current, "approve", cancellationToken, command.Via) is { } refused)
        {
            return new EditOutcome(refused);
        }
        command = command with { Reason = await redactor.RedactAsync(tenant, settings.Redaction, command.Reason, "reason") };
        if (current.State != ApprovalStates.Pending)
        {
            return new EditOutcome(NotApplied(current));
        }
        EditOutcome? answer = null;
        var outcome = await UnderLockAsync(current, async current =>
        {
            answer = await EditLockedAsync(caller, current, settings, payload, command, cancellationToken);
            return answer.Outcome;
        }, cancellationToken);
        return answer ?? new EditOutcome(outcome);
    }

    /// <summary>403 (audited, as a refused approval) when the caller may not approve this approval; null when they may.</summary>
    public Task<DecisionOutcome?> RefusalToApproveAsync(Caller caller, TenantSettings settings, Approval approval, string? via, CancellationToken cancellationToken) =>
        RefuseAsync(caller, settings, approval, "approve", cancellationToken, via);

    private static DecisionOutcome NotApplied(Approval current) => new(Outcome.Conflict, current, current.State,
        $"The approval is already {current.State}; your edit was not applied.");

    private async Task<EditOutcome> EditLockedAsync(Caller caller, Approval current, TenantSettings settings, JsonElement payload,
        DecideCommand command, CancellationToken cancellationToken)
    {
        var (tenant, id) = (current.Tenant, current.Id);
        // Checked again on what the lock protects.
        if (await RefuseAsync(caller, settings, current, "approve", cancellationToken, command.Via) is { } refused)
        {
            return new EditOutcome(refused);
        }
        if (current.State != ApprovalStates.Pending)
        {
            return new EditOutcome(NotApplied(current));
        }
        var now = time.GetUtcNow();
        if (now >= current.ExpiresAt)
        {
            var expired = await ExpireDueAsync(current, now, cancellationToken);
            return new EditOutcome(NotApplied(expired ?? current));
        }
        if (command.JobHash is not null && command.JobHash != current.JobHash)
        {
            await RefusedAsync(current, caller, Verdict.Approve, "job_changed", cancellationToken, command.Via);
            return new EditOutcome(new DecisionOutcome(Outcome.Conflict, current, "job_changed",
                "The job hash you reviewed does not match this approval's job (another version is in place); reload it."));
        }
        if (command.PolicySnapshot is not null && command.PolicySnapshot != current.PolicySnapshot)
        {
            await RefusedAsync(current, caller, Verdict.Approve, "snapshot_changed", cancellationToken, command.Via);
            return new EditOutcome(new DecisionOutcome(Outcome.Conflict, current, "snapshot_changed",
                "The policy snapshot you reviewed is not this approval's snapshot."));
        }

        // A field the reviewer only saw masked keeps its value unless they typed a new one.
        var (edited, invalid) = PayloadEdits.Unmask(payload, current.Job.Payload, settings.Redaction.Fields);
        if (invalid is not null)
        {
            return new EditOutcome(new DecisionOutcome(Outcome.Conflict, current), "payload." + invalid,
                $"'{PayloadMasking.Marker}' stands for a value you were not shown; this field had none to keep. Type the value or leave the field out.");
        }
        var job = current.Job with { Payload = edited };
        var jobHash = JobHasher.Hash(tenant, job);
        if (jobHash == current.JobHash)
        {
            // Nothing was changed: an ordinary approval.
            return new EditOutcome(await DecideLockedAsync(caller, current, settings, Verdict.Approve, ApprovalStates.Approved, command, cancellationToken));
        }

        var (policy, evaluation) = await EvaluateAsync(tenant, job);
        if (policy is null)
        {
            return new EditOutcome(new DecisionOutcome(Outcome.Unavailable, current, "policy_unavailable", "The tenant has no published policy."));
        }
        if (policy.Snapshot != current.PolicySnapshot)
        {
            await RefusedAsync(current, caller, Verdict.Approve, "snapshot_changed", cancellationToken, command.Via);
            return new EditOutcome(new DecisionOutcome(Outcome.Conflict, current, "snapshot_changed",
                $"The tenant's policy changed since submit (now {policy.Snapshot}); re-evaluate the approval first."));
        }
        if (evaluation.Decision == PolicyDecision.Deny)
        {
            await RefusedAsync(current, caller, Verdict.Approve, "policy_denied", cancellationToken, command.Via);
            return new EditOutcome(new DecisionOutcome(Outcome.Forbidden, current, "policy_denied",
                $"The tenant's policy denies the edited job (rule {evaluation.RuleId ?? "(default)"}); nothing changed."), RuleId: evaluation.RuleId);
        }

        // The edited version is counted afresh: earlier votes were on another job; the editor's approval is the first vote,
        // in the seat the decision path gives it (a delegate votes in the away approver's seat).
        var actsFor = (await access.DecisionRightAsync(caller, settings, current, approving: true, cancellationToken)).ActsFor;
        var quorum = settings.Workflow.Quorum;
        IReadOnlyList<Vote> votes = [new Vote(actsFor ?? caller.Name, "approve", now, command.Reason, actsFor is null ? null : caller.Name)];
        var decides = quorum is null || votes.Count >= quorum.Required;
        var tally = quorum is null ? null : Tally(votes, quorum);
        var to = decides ? ApprovalStates.Approved : ApprovalStates.Pending;
        var next = current with
        {
            Version = current.Version + 1,
            JobId = ApprovalIds.NewJobId(now),
            Job = job,
            JobHash = jobHash,
            RuleId = evaluation.RuleId,
            Lineage =
            [
                .. current.Lineage,
                new ApprovalVersion(current.Version, current.JobId, current.JobHash, current.PolicySnapshot, current.Job.Payload,
                    current.VersionSubmittedAt ?? current.CreatedAt, null, null, current.Votes),
            ],
            Votes = votes,
            VersionSubmittedAt = now,
            Edited = true,
            EditedBy = caller.Name,
        };
        await store.IndexJobAsync(tenant, next.JobId, id);
        var changes = PayloadMasking.Describe(PayloadDiff.Compare(current.Job.Payload, job.Payload), settings.Redaction.Fields);
        var entry = Entry(next, caller.Actor, decides ? "approved" : "vote_approve", ApprovalStates.Pending, to);
        entry.Reason = command.Reason;
        entry.Details = command.DetailsWith(AuditDetails.Join(actsFor is null ? null : "for: " + actsFor, "edited: true", $"version {next.Version}",
            $"previous job hash {current.JobHash}", $"changes: {changes}", tally));
        List<KeyValuePair<string, string>> fields =
        [
            .. RedisApprovalStore.WorkflowFields(next),
            .. RedisApprovalStore.JobFields(job),
            new("jobId", next.JobId),
            new("jobHash", next.JobHash),
            new("ruleId", next.RuleId ?? ""),
            new("edited", "true"),
            new("editedBy", caller.Name),
        ];
        if (decides)
        {
            fields.Add(new("decidedAt", RedisApprovalStore.Ms(now)));
            fields.Add(new("decidedBy", caller.Name));
            fields.Add(new("reason", command.Reason ?? ""));
        }
        var summary = $"{caller.Name}{(actsFor is null ? "" : " for " + actsFor)} edited {job.Topic} in {job.Env} (version {next.Version}; changes: {changes})";
        var notifications = decides
            ? Notify(settings, next, NotificationKinds.Decision, Requesters(next), now, $"approved (edited): {job.Topic}",
                $"{summary} and approved it{(command.Reason is null ? "" : $": {command.Reason}")}.", state: ApprovalStates.Approved)
            : Notify(settings, next, NotificationKinds.ApprovalRequested, settings.NotifiedAt(next.EscalationLevel), now,
                $"Edited (v{next.Version}): {job.Topic}", $"{summary}; it needs your vote again ({tally}).");
        var release = decides && settings.Dispatch is not null;
        var result = await MoveAsync(entry, new TransitionRequest
        {
            Tenant = tenant,
            ApprovalId = id,
            From = ApprovalStates.Pending,
            To = to,
            ExpectedSeq = current.Seq,
            IdempotencyKey = current.IdempotencyKey,
            Now = now,
            Mode = TransitionMode.Decide,
            // Fenced on what was read under the lock: the version (seq), its job and its policy still in force.
            SeenJobHash = current.JobHash,
            SeenSnapshot = current.PolicySnapshot,
            RequireCurrentPolicy = true,
            Dispatch = release,
            Retention = decides ? Retention : null,
            ClearTimers = decides,
            AuditJson = "",
            Fields = fields,
            Notifications = notifications,
            Closing = decides ? current : null,
        }, cancellationToken);
        switch (result.Status)
        {
            case "ok":
                if (release)
                {
                    dispatchSignal.Wake();
                }
                return new EditOutcome(new DecisionOutcome(Outcome.Ok, await store.GetApprovalAsync(tenant, id), decides ? null : "vote_recorded", tally));
            case "job_changed" or "snapshot_changed":
                await RefusedAsync(current, caller, Verdict.Approve, result.Status, cancellationToken, command.Via);
                return new EditOutcome(new DecisionOutcome(Outcome.Conflict, current, result.Status,
                    result.Status == "job_changed" ? "The job changed while you edited it." : $"The tenant's policy changed (now {result.Value}); re-evaluate first."));
            case "deadline_passed":
                var expired = await ExpireDueAsync(current, now, cancellationToken);
                return new EditOutcome(NotApplied(expired ?? current));
            default:
                return new EditOutcome(await store.GetApprovalAsync(tenant, id) is { } latest ? NotApplied(latest) : DecisionOutcome.NotFound);
        }
    }
}

/// <summary>How an edited payload treats the fields a reviewer only saw masked.</summary>
public static class PayloadEdits
{
    /// <summary>
    /// The edited payload with every <c>"[redacted:field]"</c> a reviewer sent back replaced by the original value at that
    /// path (a masked field is kept unless typed anew); the path at fault when the marker stands where nothing was masked.
    /// </summary>
    public static (JsonElement Payload, string? InvalidPath) Unmask(JsonElement edited, JsonElement original, IReadOnlyList<string> fields)
    {
        var node = JsonNode.Parse(edited.GetRawText());
        var originalNode = JsonNode.Parse(original.GetRawText());
        string? invalid = null;
        node = Walk(node, originalNode, "", fields, ref invalid);
        if (invalid is not null)
        {
            return (edited, invalid);
        }
        using var document = JsonDocument.Parse(node?.ToJsonString() ?? "null");
        return (document.RootElement.Clone(), null);
    }

    private static JsonNode? Walk(JsonNode? edited, JsonNode? original, string path, IReadOnlyList<string> fields, ref string? invalid)
    {
        switch (edited)
        {
            case JsonValue value when value.GetValueKind() == JsonValueKind.String && value.GetValue<string>() == PayloadMasking.Marker:
                if (original is not null && path.Length > 0 && PayloadMasking.IsMasked(path, fields))
                {
                    return original.DeepClone();
                }
                invalid ??= path.Length == 0 ? "" : path;
                return edited;
            case JsonObject obj:
                foreach (var name in obj.Select(p => p.Key).ToList())
                {
                    var child = obj[name];
                    var replaced = Walk(child, (original as JsonObject)?[name], path.Length == 0 ? name : $"{path}.{name}", fields, ref invalid);
                    if (!ReferenceEquals(replaced, child))
                    {
                        obj[name] = replaced;
                    }
                }
                return obj;
            case JsonArray array:
                for (var i = 0; i < array.Count; i++)
                {
                    var child = array[i];
                    var originalArray = original as JsonArray;
                    var replaced = Walk(child, originalArray is not null && i < originalArray.Count ? originalArray[i] : null, $"{path}[{i}]", fields, ref invalid);
                    if (!ReferenceEquals(replaced, child))
                    {
                        array[i] = replaced;
                    }
                }
                return array;
            default:
                return edited;
        }
    }
}
