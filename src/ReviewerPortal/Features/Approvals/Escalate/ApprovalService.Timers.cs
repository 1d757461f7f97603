using System.Text.Json;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// What a workflow engine would do for an approval, on Redis timers: reminders, escalation, the timeout outcome. Each
/// timer is a member of the tenant's timer set, fired under the approval's lock by one atomic transition guarded by the
/// due time it was scheduled for, so with any number of app instances each step happens once; a step that fell due
/// while every instance was down fires at start.
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
}
