using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;

namespace ReviewerPortal.Client.Agents;

/// <summary>
/// Answers Agent Framework's own function-approval flow from ReviewerPortal: for each
/// <see cref="ToolApprovalRequestContent"/> an agent run returns (functions wrapped in <see cref="ApprovalRequiredAIFunction"/>),
/// it submits the call as a job, waits for the decision and produces the <see cref="ToolApprovalResponseContent"/>
/// (approved, or rejected with the reviewer's reason) to continue the run with.
/// </summary>
public sealed class ReviewerPortalApprovalResponder(ApprovalGate gate)
{
    public ReviewerPortalApprovalResponder(ReviewerPortalClient client, AgentApprovalOptions? options = null) : this(new ApprovalGate(client, options))
    {
    }

    /// <summary>The approval requests in an agent's answer (empty when it asked for none).</summary>
    public static IReadOnlyList<ToolApprovalRequestContent> RequestsIn(AgentResponse response) =>
        [.. response.Messages.SelectMany(m => m.Contents).OfType<ToolApprovalRequestContent>()];

    /// <summary>Decides every request in <paramref name="response"/>; the message to pass to the next <c>RunAsync</c>, or null when there were none.</summary>
    public async Task<ChatMessage?> RespondAsync(AgentResponse response, CancellationToken cancellationToken = default)
    {
        var requests = RequestsIn(response);
        if (requests.Count == 0)
        {
            return null;
        }
        var answers = await RespondAsync(requests, cancellationToken);
        return new ChatMessage(ChatRole.User, [.. answers]);
    }

    public async Task<IReadOnlyList<ToolApprovalResponseContent>> RespondAsync(IEnumerable<ToolApprovalRequestContent> requests,
        CancellationToken cancellationToken = default)
    {
        var answers = new List<ToolApprovalResponseContent>();
        foreach (var request in requests)
        {
            answers.Add(await RespondAsync(request, cancellationToken));
        }
        return answers;
    }

    public async Task<ToolApprovalResponseContent> RespondAsync(ToolApprovalRequestContent request, CancellationToken cancellationToken = default)
    {
        if (request.ToolCall is not FunctionCallContent call)
        {
            return request.CreateResponse(false, "Only function calls can be put before ReviewerPortal.");
        }
        var outcome = await gate.DecideAsync(call.Name, call.Arguments, call.CallId, cancellationToken);
        return request.CreateResponse(outcome.MayRun, outcome.Message);
    }
}
