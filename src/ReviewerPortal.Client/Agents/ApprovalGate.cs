using System.Text.Json;
using Microsoft.Extensions.AI;

namespace ReviewerPortal.Client.Agents;

/// <summary>How agent tool calls become ReviewerPortal jobs.</summary>
public sealed class AgentApprovalOptions
{
    /// <summary>The job's topic for a function; default <c>agent.{function name}</c>.</summary>
    public Func<string, string> Topic { get; set; } = name => "agent." + name;

    public string Env { get; set; } = "production";
    public string? Channel { get; set; } = "agent";
    public string? Priority { get; set; }

    /// <summary>Prefix of the idempotency key built from the tool call id (the same call id always finds the same approval).</summary>
    public string IdempotencyPrefix { get; set; } = "agent-call:";

    /// <summary>Longest time one call waits for a decision; past it the call is answered as not run (the approval stays).</summary>
    public TimeSpan WaitTimeout { get; set; } = TimeSpan.FromDays(30);

    /// <summary>The person the agent acts for (separation of duties: they may not approve it).</summary>
    public string? RequestedBy { get; set; }
}

/// <summary>The outcome of one tool call put before ReviewerPortal.</summary>
/// <param name="MayRun">True only when the policy allowed it, or a reviewer approved exactly these arguments.</param>
/// <param name="Message">Why it may not run (the rule, the retry time, the reviewer's reason), for the model to read.</param>
/// <param name="Submitted">The policy's answer to the submit.</param>
/// <param name="Approval">The decided approval, when a human was required.</param>
public sealed record GateOutcome(bool MayRun, string Message, SubmitResult Submitted, ApprovalInfo? Approval);

/// <summary>Submits a tool call as a job and waits durably for its decision: the shared core of the wrapper and the responder.</summary>
public sealed class ApprovalGate(ReviewerPortalClient client, AgentApprovalOptions? options = null)
{
    public AgentApprovalOptions Options { get; } = options ?? new AgentApprovalOptions();

    /// <summary>
    /// Submits <paramref name="functionName"/> with <paramref name="arguments"/> (idempotent on <paramref name="callId"/>, so
    /// a process that restarts and replays the call attaches to the same approval) and waits until it is decided.
    /// </summary>
    public async Task<GateOutcome> DecideAsync(string functionName, IEnumerable<KeyValuePair<string, object?>>? arguments, string? callId,
        CancellationToken cancellationToken = default)
    {
        var topic = Options.Topic(functionName);
        var payload = Payload(arguments);
        var key = string.IsNullOrEmpty(callId) ? null : Options.IdempotencyPrefix + callId;
        var submitted = await client.SubmitAsync(new JobSubmission(topic, Options.Env, payload, Options.Channel, Options.Priority, key,
            Options.RequestedBy), cancellationToken);
        switch (submitted.Decision)
        {
            case "allow":
                return new GateOutcome(true, $"Allowed by policy rule {submitted.RuleId ?? "(default)"}.", submitted, null);
            case "deny":
                return new GateOutcome(false, $"Not run: the policy denies '{topic}' (rule {submitted.RuleId ?? "(default)"}).", submitted, null);
            case "throttle":
                var seconds = Math.Max(1, (int)Math.Ceiling(submitted.RetryAfter?.TotalSeconds ?? 1));
                return new GateOutcome(false, $"Not run: the policy limits '{topic}' (rule {submitted.RuleId}); retry in {seconds} s.", submitted, null);
        }

        var approvalId = submitted.ApprovalId!;
        var deadline = DateTimeOffset.UtcNow + Options.WaitTimeout;
        ApprovalInfo? approval;
        do
        {
            var left = deadline - DateTimeOffset.UtcNow;
            approval = await client.WaitForDecisionAsync(approvalId, left < TimeSpan.FromMinutes(5) ? left : TimeSpan.FromMinutes(5), cancellationToken);
        }
        while (approval is { IsPending: true } && DateTimeOffset.UtcNow < deadline);

        if (approval is null)
        {
            return new GateOutcome(false, $"Not run: approval {approvalId} no longer exists.", submitted, null);
        }
        if (approval.IsPending)
        {
            return new GateOutcome(false, $"Not run yet: approval {approvalId} is still waiting for a reviewer.", submitted, approval);
        }
        if (!approval.IsApproved)
        {
            var reason = approval.IsChangesRequested ? approval.ChangesReason : approval.Reason;
            var by = approval.DecidedBy ?? approval.ChangesRequestedBy;
            return new GateOutcome(false, $"Not run: approval {approvalId} was {approval.State.Replace('_', ' ')}{(by is null ? "" : " by " + by)}: " +
                $"{(string.IsNullOrWhiteSpace(reason) ? "no reason given" : reason)}.", submitted, approval);
        }
        if (approval.Edited)
        {
            // A reviewer changed the arguments before approving: these arguments are not what was approved.
            return new GateOutcome(false, $"Not run: {approval.EditedBy} edited the job before approving it (approval {approvalId}, " +
                $"version {approval.Version}); only the edited payload may run, not these arguments.", submitted, approval);
        }
        // Run only what was approved: the approval's hash must be the hash of exactly these arguments.
        var mine = ClientJobHash.Compute(approval.Tenant, topic, Options.Env, Options.Channel, payload);
        if (approval.JobHash != mine || submitted.JobHash != mine)
        {
            return new GateOutcome(false, $"Not run: approval {approvalId} is for a different job (hash mismatch).", submitted, approval);
        }
        return new GateOutcome(true, $"Approved by {approval.DecidedBy}{(string.IsNullOrWhiteSpace(approval.Reason) ? "" : ": " + approval.Reason)}.", submitted, approval);
    }

    internal ReviewerPortalClient Client => client;

    internal static JsonElement Payload(IEnumerable<KeyValuePair<string, object?>>? arguments)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments ?? [])
        {
            map[name] = value;
        }
        return JsonSerializer.SerializeToElement(map, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>)));
    }
}
