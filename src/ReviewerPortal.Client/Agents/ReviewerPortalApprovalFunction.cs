using System.Text.Json;
using Microsoft.Extensions.AI;

namespace ReviewerPortal.Client.Agents;

/// <summary>
/// Wraps any <see cref="AIFunction"/> so that a model's call of it is a ReviewerPortal job: submitted with the arguments as
/// payload and the tool call id as idempotency key, decided by the tenant's policy (and a reviewer when it requires one),
/// and run only when allowed or approved with a matching job hash. Otherwise the function's result is the reason it did
/// not run, so the model reads it. An approved call runs once: its result is recorded as the approval's side effect and
/// a replayed call (a process restart with the same tool call id) returns it without running again.
/// </summary>
public sealed class ReviewerPortalApprovalFunction(AIFunction inner, ApprovalGate gate) : DelegatingAIFunction(inner)
{
    public ReviewerPortalApprovalFunction(AIFunction inner, ReviewerPortalClient client, AgentApprovalOptions? options = null)
        : this(inner, new ApprovalGate(client, options))
    {
    }

    protected override async ValueTask<object?> InvokeCoreAsync(AIFunctionArguments arguments, CancellationToken cancellationToken)
    {
        var callId = FunctionInvokingChatClient.CurrentContext?.CallContent.CallId;
        var outcome = await gate.DecideAsync(Name, arguments, callId, cancellationToken);
        if (!outcome.MayRun)
        {
            return outcome.Message;
        }
        if (outcome.Approval is not { } approval)
        {
            return await base.InvokeCoreAsync(arguments, cancellationToken); // allowed outright
        }
        // Claim the run under the approval: only the first claimant runs the function; a replay gets the recorded result.
        var action = "function:" + Name;
        var claim = await gate.Client.RecordSideEffectAsync(approval.Id, action + ":started", new { callId }, approval.JobHash,
            approval.PolicySnapshot, cancellationToken);
        if (!claim.FirstTime)
        {
            var recorded = await gate.Client.RecordSideEffectAsync(approval.Id, action + ":result",
                new { outcome = "unknown", detail = "The approved call was started before and its result was not recorded; it is not run again." },
                approval.JobHash, approval.PolicySnapshot, cancellationToken);
            return recorded.Result;
        }
        var result = await base.InvokeCoreAsync(arguments, cancellationToken);
        var stored = await gate.Client.RecordSideEffectAsync(approval.Id, action + ":result",
            result is null ? JsonDocument.Parse("null").RootElement : JsonSerializer.SerializeToElement(result, JsonSerializerOptions.GetTypeInfo(result.GetType())),
            approval.JobHash, approval.PolicySnapshot, cancellationToken);
        return stored.FirstTime ? result : stored.Result;
    }
}

/// <summary>Extensions to put an <see cref="AIFunction"/> under ReviewerPortal's approval.</summary>
public static class ReviewerPortalAIFunctionExtensions
{
    /// <summary>This function, run only when ReviewerPortal's policy allows the call or a reviewer approves it.</summary>
    public static AIFunction WithReviewerPortalApproval(this AIFunction function, ReviewerPortalClient client, AgentApprovalOptions? options = null) =>
        new ReviewerPortalApprovalFunction(function, client, options);
}
