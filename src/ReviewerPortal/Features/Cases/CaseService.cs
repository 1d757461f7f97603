using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Cases;

public sealed record OpenCaseCommand(string Subject, IReadOnlyList<string> Documents, int MaxIterations, TimeSpan Window, TimeSpan DocumentDeadline,
    string OnDocumentTimeout, string? IdempotencyKey);

public sealed record CaseOutcome(Outcome Kind, ComplianceCase? Case = null, string? Code = null, string? Detail = null)
{
    public static CaseOutcome NotFound { get; } = new(Outcome.NotFound, Code: "not_found", Detail: "No such case.");
}

/// <summary>
/// Multi-step compliance cases without a workflow engine: every move is one atomic Redis step (state, timer,
/// notifications, audit outbox) under the case's lock, checked against the sequence it read; the document request
/// deadline and the case window are timers in the tenant's timer set, fired by the timer service exactly once.
/// </summary>
public sealed class CaseService(
    CaseStore store,
    TenantStore tenants,
    TenantAccess access,
    AuditLog audit,
    RedisLockFactory locks,
    NotifySignal notifySignal,
    ExpirySignal timerSignal,
    IOptions<ApprovalOptions> options,
    Redaction.Redactor redactor,
    TimeProvider time)
{
    public async Task<CaseOutcome> OpenAsync(Caller agent, OpenCaseCommand command, CancellationToken cancellationToken)
    {
        var tenant = agent.AgentTenant!;
        if (command.IdempotencyKey is not null && await store.IdempotentAsync(tenant, command.IdempotencyKey) is { } existingId
            && await store.GetAsync(tenant, existingId) is { } existing)
        {
            return new CaseOutcome(Outcome.AlreadyDone, existing, "already_opened");
        }
        var settings = await tenants.GetSettingsAsync(tenant);
        if (settings is null)
        {
            return new CaseOutcome(Outcome.Unavailable, Code: "tenant_unavailable", Detail: $"Tenant '{tenant}' is not configured.");
        }
        command = command with { Subject = await redactor.RedactAsync(tenant, settings.Redaction, command.Subject, "subject") ?? "" };
        var now = time.GetUtcNow();
        var id = ApprovalIds.NewCaseId(now);
        var closesAt = now + command.Window;
        var c = new ComplianceCase
        {
            Id = id,
            Tenant = tenant,
            Subject = command.Subject,
            State = CaseStates.DocumentsRequested,
            Submitter = agent.Name,
            OpenedAt = now,
            ClosesAt = closesAt,
            MaxIterations = command.MaxIterations,
            DocumentDeadline = command.DocumentDeadline,
            OnDocumentTimeout = command.OnDocumentTimeout,
            IdempotencyKey = command.IdempotencyKey,
            Iterations = [NewIteration(1, command.Documents, now, now + command.DocumentDeadline, closesAt, "system", null)],
        };
        await store.IndexAsync(tenant, id);
        var entry = Entry(c, agent.Actor, "case_opened", null, c.State);
        entry.Reason = $"{command.Subject}; documents requested: {string.Join(", ", command.Documents)}";
        entry.Details = $"up to {c.MaxIterations} iterations until {closesAt:O}; documents due {c.Current.DocumentsDueAt:O}";
        var (status, value) = await SaveAsync(c, null, entry, Notify(settings, c, NotificationKinds.DocumentsRequested, [], now,
            $"Documents requested: {c.Subject}", $"Case {c.Subject} needs: {string.Join(", ", command.Documents)} by {c.Current.DocumentsDueAt:u}."),
            command.IdempotencyKey, cancellationToken);
        if (status == "duplicate" && await store.GetAsync(tenant, value!) is { } first)
        {
            return new CaseOutcome(Outcome.AlreadyDone, first, "already_opened");
        }
        return status == "ok" ? new CaseOutcome(Outcome.Ok, await store.GetAsync(tenant, id), "opened") : new CaseOutcome(Outcome.Conflict, c, status);
    }

    /// <summary>The case if the caller may read its tenant; null exactly as if it did not exist.</summary>
    public async Task<ComplianceCase?> GetAsync(Caller caller, string id)
    {
        if (!ApprovalIds.LooksLikeCase(id))
        {
            return null;
        }
        var tenant = caller.IsAgent ? caller.AgentTenant : await store.FindTenantAsync(id);
        if (tenant is null || !await access.CanReadAsync(caller, tenant))
        {
            return null;
        }
        return await store.GetAsync(tenant, id);
    }

    public async Task<IReadOnlyList<ComplianceCase>?> ListAsync(Caller caller, string tenant, int limit) =>
        await access.CanReadAsync(caller, tenant) ? await store.ListAsync(tenant, limit) : null;

    /// <summary>The agent hands in the requested documents; the case goes to review.</summary>
    public async Task<CaseOutcome> SubmitDocumentsAsync(Caller agent, string id, JsonElement documents, string? note, CancellationToken cancellationToken)
    {
        var current = await GetAsync(agent, id);
        if (current is null)
        {
            return CaseOutcome.NotFound;
        }
        return await UnderLockAsync(current, async (c, settings, now) =>
        {
            if (c.State != CaseStates.DocumentsRequested)
            {
                return new CaseOutcome(Outcome.Conflict, c, c.State, $"The case is {c.State}; documents are not requested now.");
            }
            if (now >= c.Current.DocumentsDueAt || now >= c.ClosesAt)
            {
                await FireLockedAsync(c, settings, now, cancellationToken);
                var after = await store.GetAsync(c.Tenant, c.Id) ?? c;
                return new CaseOutcome(Outcome.Conflict, after, "deadline_passed", $"The documents were due {c.Current.DocumentsDueAt:u}; the case is {after.State}.");
            }
            note = await redactor.RedactAsync(c.Tenant, settings.Redaction, note, "note");
            var next = c with
            {
                State = CaseStates.InReview,
                Iterations = [.. c.Iterations.SkipLast(1), c.Current with { Documents = documents.Clone(), SubmittedAt = now }],
            };
            var entry = Entry(c, agent.Actor, "documents_submitted", c.State, next.State);
            entry.Reason = note;
            entry.Details = $"iteration {c.Iteration}";
            return await MoveAsync(c, next, entry, Notify(settings, next, NotificationKinds.ApprovalRequested, settings.Approvers, now,
                $"Case ready for review: {c.Subject}", $"Documents for iteration {c.Iteration} of {c.Subject} were submitted."), "documents_submitted", cancellationToken);
        }, cancellationToken);
    }

    /// <summary>A reviewer decides: approve, reject or escalate end the case; request_documents starts the next iteration.</summary>
    public async Task<CaseOutcome> DecideAsync(Caller caller, string id, string decision, string? reason, IReadOnlyList<string>? documents,
        CancellationToken cancellationToken)
    {
        var current = await GetAsync(caller, id);
        if (current is null)
        {
            return CaseOutcome.NotFound;
        }
        var tenantSettings = await tenants.GetSettingsAsync(current.Tenant);
        // An approver, or the delegate of one who is away (audited "for: alice").
        var right = tenantSettings is null ? null : await access.CaseRightAsync(caller, tenantSettings, cancellationToken);
        if (right is null || right.Code is not null)
        {
            var refused = Entry(current, caller.Actor, "case_decision_refused", current.State, current.State);
            refused.Reason = "not_an_approver";
            await audit.AppendAsync(refused, cancellationToken);
            return new CaseOutcome(Outcome.Forbidden, current, "not_an_approver", $"'{caller.Name}' is not an approver of tenant '{current.Tenant}'.");
        }
        return await UnderLockAsync(current, async (c, settings, now) =>
        {
            if (c.State != CaseStates.InReview)
            {
                return new CaseOutcome(Outcome.Conflict, c, c.State,
                    c.State == CaseStates.DocumentsRequested ? "The case waits for documents." : $"The case is already {c.State}.");
            }
            reason = await redactor.RedactAsync(c.Tenant, settings.Redaction, reason, "reason");
            var decided = c.Current with { Decision = decision, DecidedBy = caller.Name, Reason = reason, DecidedAt = now };
            var iterations = c.Iterations.SkipLast(1).Append(decided).ToList();
            ComplianceCase next;
            string why;
            if (decision == CaseDecisions.RequestDocuments && c.Iteration >= c.MaxIterations)
            {
                why = $"more documents requested, but the limit of {c.MaxIterations} iterations is reached";
                next = c with { State = CaseStates.Escalated, Iterations = iterations, OutcomeReason = why, ClosedAt = now };
            }
            else if (decision == CaseDecisions.RequestDocuments)
            {
                why = $"iteration {c.Iteration + 1} of {c.MaxIterations}: {string.Join(", ", documents!)}";
                iterations.Add(NewIteration(c.Iteration + 1, documents!, now, now + c.DocumentDeadline, c.ClosesAt, caller.Name, reason));
                next = c with { State = CaseStates.DocumentsRequested, Iterations = iterations };
            }
            else
            {
                why = reason ?? decision;
                next = c with
                {
                    State = decision switch { CaseDecisions.Approve => CaseStates.Approved, CaseDecisions.Reject => CaseStates.Rejected, _ => CaseStates.Escalated },
                    Iterations = iterations,
                    OutcomeReason = why,
                    ClosedAt = now,
                };
            }
            var entry = Entry(c, caller.Actor, decision == CaseDecisions.RequestDocuments && next.State == CaseStates.DocumentsRequested
                ? "documents_requested" : "case_decided", c.State, next.State);
            entry.Reason = reason;
            entry.Details = AuditDetails.Join(why, right.ActsFor is null ? null : "for: " + right.ActsFor);
            var notifications = next.State == CaseStates.DocumentsRequested
                ? Notify(settings, next, NotificationKinds.DocumentsRequested, [], now, $"More documents requested: {c.Subject}",
                    $"{caller.Name} asks for {string.Join(", ", documents!)} by {next.Current.DocumentsDueAt:u}{(reason is null ? "" : $": {reason}")}.")
                : Notify(settings, next, NotificationKinds.Decision, [], now, $"Case {next.State}: {c.Subject}", $"{c.Subject}: {next.State} by {caller.Name} ({why}).");
            return await MoveAsync(c, next, entry, notifications, decision, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>Fires a case's due deadline (the timer service calls it; safe on every instance).</summary>
    public async Task<bool> FireAsync(string tenant, string id, CancellationToken cancellationToken)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, id), cancellationToken, TimeSpan.FromSeconds(2));
        if (held is null)
        {
            return false;
        }
        var c = await store.GetAsync(tenant, id);
        var settings = await tenants.GetSettingsAsync(tenant);
        if (c is null || settings is null || c.NextDeadline is null)
        {
            await store.RemoveTimerAsync(tenant, id);
            return false;
        }
        return await FireLockedAsync(c, settings, time.GetUtcNow(), cancellationToken);
    }

    private async Task<bool> FireLockedAsync(ComplianceCase c, TenantSettings settings, DateTimeOffset now, CancellationToken cancellationToken)
    {
        string to, why;
        if (now >= c.ClosesAt)
        {
            to = CaseStates.Escalated;
            why = $"the case window closed at {c.ClosesAt:u} after {c.Iteration} iteration{(c.Iteration == 1 ? "" : "s")} without a final decision";
        }
        else if (c.State == CaseStates.DocumentsRequested && now >= c.Current.DocumentsDueAt)
        {
            to = c.OnDocumentTimeout == TimeoutOutcomes.Escalate ? CaseStates.Escalated : CaseStates.Rejected;
            why = $"documents of iteration {c.Iteration} were not submitted by {c.Current.DocumentsDueAt:u}";
        }
        else
        {
            return false; // not due yet: the timer set holds the next deadline
        }
        var next = c with { State = to, OutcomeReason = why, ClosedAt = now };
        var entry = Entry(c, "system:timer", "case_timed_out", c.State, to);
        entry.Reason = why;
        var outcome = await MoveAsync(c, next, entry, Notify(settings, next, NotificationKinds.Timeout, settings.Approvers, now,
            $"Case {to}: {c.Subject}", $"{c.Subject}: {why}; the case is {to}."), "timed_out", cancellationToken);
        return outcome.Kind == Outcome.Ok;
    }

    private async Task<CaseOutcome> UnderLockAsync(ComplianceCase seen, Func<ComplianceCase, TenantSettings, DateTimeOffset, Task<CaseOutcome>> step,
        CancellationToken cancellationToken)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(seen.Tenant, seen.Id), cancellationToken);
        if (held is null)
        {
            return new CaseOutcome(Outcome.Locked, seen, "lock_busy", "Another change of this case is in progress; retry.");
        }
        var current = await store.GetAsync(seen.Tenant, seen.Id);
        var settings = await tenants.GetSettingsAsync(seen.Tenant);
        if (current is null || settings is null)
        {
            return CaseOutcome.NotFound;
        }
        return await step(current, settings, time.GetUtcNow());
    }

    private async Task<CaseOutcome> MoveAsync(ComplianceCase from, ComplianceCase to, AuditEntry entry, IReadOnlyList<Notification> notifications,
        string code, CancellationToken cancellationToken)
    {
        var (status, _) = await SaveAsync(to, from.Seq, entry, notifications, null, cancellationToken);
        return status == "ok"
            ? new CaseOutcome(Outcome.Ok, await store.GetAsync(to.Tenant, to.Id), code)
            : new CaseOutcome(Outcome.Conflict, await store.GetAsync(to.Tenant, to.Id) ?? from, "changed", "The case changed meanwhile; reload.");
    }

    private async Task<(string Status, string? Value)> SaveAsync(ComplianceCase c, int? expectedSeq, AuditEntry entry, IReadOnlyList<Notification> notifications,
        string? idempotencyKey, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var result = await audit.RecordAsync(entry, async json =>
        {
            var r = await store.SaveAsync(c, expectedSeq, json, notifications, now, idempotencyKey, options.Value.IdempotencyWindow);
            return (r.Status == "ok", r);
        }, cancellationToken);
        if (result.Status == "ok")
        {
            if (notifications.Count > 0)
            {
                notifySignal.Wake();
            }
            if (c.NextDeadline is { } due && due - now < Infrastructure.Timers.DueWorkService.MaxSleep)
            {
                timerSignal.Wake();
            }
        }
        return result;
    }

    private static CaseIteration NewIteration(int number, IReadOnlyList<string> documents, DateTimeOffset now, DateTimeOffset due, DateTimeOffset closesAt,
        string requestedBy, string? note) => new()
    {
        Number = number,
        RequestedDocuments = documents,
        RequestedAt = now,
        DocumentsDueAt = due < closesAt ? due : closesAt,
        RequestedBy = requestedBy,
        RequestNote = note,
    };

    private AuditEntry Entry(ComplianceCase c, string actor, string action, string? from, string? to)
    {
        var entry = audit.NewEntry(c.Tenant, actor, action);
        entry.ApprovalId = c.Id;
        entry.FromState = from;
        entry.ToState = to;
        return entry;
    }

    private static IReadOnlyList<Notification> Notify(TenantSettings settings, ComplianceCase c, string kind, IReadOnlyList<string> recipients,
        DateTimeOffset now, string subject, string message) =>
        settings.Workflow.Notifications is not { Any: true }
            ? []
            :
            [
                new Notification
                {
                    Id = Notification.NewId(now),
                    Kind = kind,
                    Tenant = c.Tenant,
                    CaseId = c.Id,
                    State = c.State,
                    Recipients = recipients,
                    Subject = subject,
                    Message = message,
                    At = now,
                },
            ];
}
