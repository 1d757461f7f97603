using System.Text.Json;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>The submitter takes a request back while it is pending or waiting for a resubmission.</summary>
public sealed partial class ApprovalService
{
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
}
