using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Cases;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Secrets;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Migration;

public sealed partial class TenantImporter
{
    // ---------------------------------------------------------------- approvals

    private async Task ImportApprovalAsync(string tenant, int line, ExportApproval item, Caller caller, ExportHeader header, ImportResult result,
        CancellationToken cancellationToken)
    {
        if (ValidateApproval(tenant, item) is { } problem)
        {
            result.Errors.Add(new ImportLineError(line, problem, item.Approval?.Id));
            return;
        }
        var a = item.Approval with { TraceParent = item.TraceParent }; // the agent's trace goes on here
        if (!result.Warnings.Any(w => w.Contains(a.PolicySnapshot, StringComparison.Ordinal))
            && await policies.GetVersionAsync(tenant, a.PolicySnapshot) is null)
        {
            result.Warnings.Add($"Line {line} (and any other approval bound to it): policy version {a.PolicySnapshot} is not known here; " +
                                "such approvals cannot be approved until it is published here (or they are re-evaluated).");
        }
        var key = RedisKeys.Approval(tenant, a.Id);
        switch (await Existing(key, a.Id, a.State, a.Seq, line, result))
        {
            case true:
                result.Unchanged = result.Unchanged with { Approvals = result.Unchanged.Approvals + 1 };
                return;
            case false:
                return;
        }
        var now = time.GetUtcNow();
        var margin = approvalOptions.Value.ExpirySafetyMargin;
        var keepUntil = item.RecordExpiresAt ?? a.ExpiresAt + margin;
        // A deadline that passed during the move must still find its record: it lives at least one safety margin more.
        var ttl = keepUntil - now < margin ? margin : keepUntil - now;

        var entry = audit.NewEntry(tenant, caller.Actor, "approval_imported");
        entry.ApprovalId = a.Id;
        entry.JobId = a.JobId;
        entry.ToState = a.State;
        entry.PolicySnapshot = a.PolicySnapshot;
        entry.JobHash = a.JobHash;
        entry.Reason = $"imported {a.State} at seq {a.Seq}: version {a.Version}, escalation level {a.EscalationLevel}, {a.Votes.Count} vote(s), " +
                       $"{a.RemindersSent} reminder(s) sent; expires {a.ExpiresAt:O}";
        entry.Details = $"from the export of {header.ExportedAt:O}; timers {string.Join(", ", item.Timers.Select(t => $"{t.Kind} {t.DueAt:O}"))}";

        // The id → tenant index is outside the tenant's slot: written first, an orphan at worst (pruned hourly).
        await Db.HashSetAsync(RedisKeys.ApprovalIndex, a.Id, tenant);
        List<RedisValue> args =
        [
            a.Id,
            a.IdempotencyKey is null ? "" : "approval:" + a.Id,
            (long)ttl.TotalMilliseconds,
            "", // the audit entry, below
            a.CreatedAt.ToUnixTimeMilliseconds(),
            item.Timers.Count,
        ];
        foreach (var t in item.Timers)
        {
            args.Add(t.DueAt.ToUnixTimeMilliseconds());
            args.Add(t.Kind + "|" + a.Id);
        }
        var jobIds = a.Lineage.Select(v => v.JobId).Append(a.JobId).Distinct().ToList();
        args.Add(jobIds.Count);
        foreach (var jobId in jobIds)
        {
            args.Add(jobId);
            args.Add(DispatchMember.ForApproval(a.Id));
        }
        foreach (var (name, value) in RedisApprovalStore.RecordFields(a))
        {
            args.Add(name);
            args.Add(value);
        }
        var (status, value1) = await audit.RecordAsync(entry, async json =>
        {
            args[3] = json;
            var r = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.ImportApproval,
            [
                key, RedisKeys.IdempotencyOrNone(tenant, a.IdempotencyKey), RedisKeys.AuditOutbox(tenant),
                RedisKeys.StateSet(tenant, a.State), RedisKeys.Timers(tenant), RedisKeys.JobIndex(tenant),
            ], [.. args]));
            return (r.Status == "ok", r);
        }, cancellationToken);
        switch (status)
        {
            case "ok":
                result.Created = result.Created with { Approvals = result.Created.Approvals + 1 };
                await feed.PublishAsync(new ApprovalChange(tenant, a.Id, a.State, "imported", now, a.NextTimer?.DueAt));
                break;
            case "exists":
                // Another import got there first: what it holds now decides how this line is reported.
                if (await Existing(key, a.Id, a.State, a.Seq, line, result) is true)
                {
                    result.Unchanged = result.Unchanged with { Approvals = result.Unchanged.Approvals + 1 };
                }
                break;
            default:
                result.Errors.Add(new ImportLineError(line,
                    $"Idempotency key '{a.IdempotencyKey}' is held here by {value1}, another approval; nothing stored.", a.Id));
                break;
        }
    }

    /// <summary>
    /// Null when the destination does not hold the item; true when it holds it as exported (unchanged); false when it
    /// holds it in another state or seq (decided or moved on here): then it is reported and left alone.
    /// </summary>
    private async Task<bool?> Existing(RedisKey key, string id, string state, int seq, int line, ImportResult result)
    {
        var here = await Db.HashGetAsync(key, ["state", "seq"]);
        if (here[0].IsNull)
        {
            return null;
        }
        var (hereState, hereSeq) = ((string)here[0]!, (int?)here[1] ?? 0);
        if (hereState == state && hereSeq == seq)
        {
            return true;
        }
        result.Skipped.Add(new ImportSkipped(line, id, hereState, ApprovalStates.IsOpen(hereState)
            ? $"already here, {hereState} at seq {hereSeq} (the export has {state} at seq {seq}): it moved on here; left alone"
            : $"already {hereState} here (the export has it {state}): left alone"));
        return false;
    }

    private static string? ValidateApproval(string tenant, ExportApproval item)
    {
        var a = item.Approval;
        if (a is null)
        {
            return "No 'approval'.";
        }
        if (a.Tenant != tenant)
        {
            return $"An approval of tenant '{a.Tenant}', not '{tenant}'.";
        }
        if (!ApprovalIds.LooksValid(a.Id) || !a.Id.StartsWith("apr_", StringComparison.Ordinal))
        {
            return $"approval.id: '{a.Id}' is not an approval id.";
        }
        if (!ApprovalIds.LooksValid(a.JobId) || a.Lineage.Any(v => !ApprovalIds.LooksValid(v.JobId)))
        {
            return "approval.jobId: not a job id.";
        }
        if (!ApprovalStates.IsOpen(a.State))
        {
            return $"approval.state: '{a.State}' is not an open state (pending, changes_requested); only work in flight moves.";
        }
        if (JobHasher.Hash(tenant, a.Job) != a.JobHash && a.Job.Payload.GetRawText().Contains(Redaction.PayloadMasking.Marker, StringComparison.Ordinal))
        {
            return "approval.job.payload: fields the tenant masks (redactFields) were masked in this export, so the job cannot be "
                + "continued from it; export again with includeSecrets=true to move this approval.";
        }
        if (JobHasher.Hash(tenant, a.Job) != a.JobHash)
        {
            return "approval.jobHash: does not match the job (topic, env, channel, priority, payload): the line was altered.";
        }
        if (string.IsNullOrEmpty(a.PolicySnapshot) || a.Seq < 0 || a.Version < 1)
        {
            return "approval: policySnapshot, seq and version are required.";
        }
        var members = item.Timers.Select(t => t.Kind).ToList();
        if (members.Any(k => k is not ("expire" or "step" or "resubmit")) || members.Distinct().Count() != members.Count)
        {
            return "timers: each of expire, step, resubmit at most once.";
        }
        return null;
    }
}
