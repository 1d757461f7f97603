using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Agents.AI;
using Microsoft.Extensions.AI;
using ReviewerPortal.Client;
using ReviewerPortal.Client.Agents;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Client;

/// <summary>
/// A real <see cref="ChatClientAgent"/> over a scripted <see cref="IChatClient"/> (it asks for one function call, then
/// answers with what the tool said) against the real app: the function wrapper and the responder for Agent Framework's
/// own approval flow.
/// </summary>
public sealed class AgentApprovalTests : IAsyncLifetime
{
    private TestApp _app = null!;
    private readonly ConcurrentQueue<(string Invoice, int Amount)> _ran = new();

    public async Task InitializeAsync() => _app = await TestApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Wrapped_function_runs_once_with_the_approved_arguments_when_a_reviewer_approves()
    {
        await using var client = AgentClient();
        var model = new ScriptedModel("pay_invoice", new() { ["invoice"] = "INV-5", ["amount"] = 5 }, "call-approve");
        var agent = new ChatClientAgent(model, tools: [PayInvoice().WithReviewerPortalApproval(client)]);

        var run = agent.RunAsync("Pay INV-5.", await agent.CreateSessionAsync());
        var approval = await PendingAsync("agent-call:call-approve");
        Assert.Equal("agent.pay_invoice", approval.GetProperty("job").Str("topic"));
        await _app.Account("alice").Approve(approval.Str("id"), new { reason = "budgeted" });
        var response = await run;

        Assert.Equal([("INV-5", 5)], _ran);
        Assert.Contains("paid INV-5 (5)", response.Text);
    }

    [Fact]
    public async Task Wrapped_function_rejected_does_not_run_and_the_models_next_turn_carries_the_reason()
    {
        await using var client = AgentClient();
        var model = new ScriptedModel("pay_invoice", new() { ["invoice"] = "INV-6", ["amount"] = 6000 }, "call-reject");
        var agent = new ChatClientAgent(model, tools: [PayInvoice().WithReviewerPortalApproval(client)]);

        var run = agent.RunAsync("Pay INV-6.", await agent.CreateSessionAsync());
        var approval = await PendingAsync("agent-call:call-reject");
        await _app.Account("alice").Reject(approval.Str("id"), new { reason = "over the quarterly budget" });
        var response = await run;

        Assert.Empty(_ran);
        Assert.Contains("over the quarterly budget", model.LastToolResult);
        Assert.Contains("over the quarterly budget", response.Text);
    }

    [Fact]
    public async Task A_restarted_waiting_process_resumes_the_same_approval_and_asks_for_no_second_one()
    {
        var arguments = new Dictionary<string, object?> { ["invoice"] = "INV-7", ["amount"] = 7 };
        using var crash = new CancellationTokenSource();
        var first = AgentClient();
        var firstAgent = new ChatClientAgent(new ScriptedModel("pay_invoice", arguments, "call-restart"),
            tools: [PayInvoice().WithReviewerPortalApproval(first)]);
        var waiting = firstAgent.RunAsync("Pay INV-7.", await firstAgent.CreateSessionAsync(), cancellationToken: crash.Token);
        var approval = await PendingAsync("agent-call:call-restart");
        await crash.CancelAsync(); // the process dies while it waits
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await first.DisposeAsync();

        // The new process replays the conversation: the same tool call id.
        await using var second = AgentClient();
        var secondAgent = new ChatClientAgent(new ScriptedModel("pay_invoice", arguments, "call-restart"),
            tools: [PayInvoice().WithReviewerPortalApproval(second)]);
        var resumed = secondAgent.RunAsync("Pay INV-7.", await secondAgent.CreateSessionAsync());
        Assert.Equal(approval.Str("id"), (await PendingAsync("agent-call:call-restart")).Str("id"));
        await _app.Account("alice").Approve(approval.Str("id"));
        var response = await resumed;

        Assert.Equal(1, await _app.AuditCountAsync(null, "submitted"));
        Assert.Equal([("INV-7", 7)], _ran);
        Assert.Contains("paid INV-7 (7)", response.Text);
    }

    [Fact]
    public async Task Responder_answers_the_frameworks_approval_request_and_the_function_runs_once_when_approved()
    {
        await using var client = AgentClient();
        var model = new ScriptedModel("pay_invoice", new() { ["invoice"] = "INV-8", ["amount"] = 8 }, "call-responder-ok");
        var agent = new ChatClientAgent(model, tools: [new ApprovalRequiredAIFunction(PayInvoice())]);
        var session = await agent.CreateSessionAsync();
        var responder = new ReviewerPortalApprovalResponder(client);

        var asked = await agent.RunAsync("Pay INV-8.", session);
        Assert.Single(ReviewerPortalApprovalResponder.RequestsIn(asked));
        Assert.Empty(_ran);
        var answering = responder.RespondAsync(asked);
        var approval = await PendingAsync("agent-call:call-responder-ok");
        await _app.Account("alice").Approve(approval.Str("id"), new { reason = "fine" });
        var answer = await answering;
        var response = await agent.RunAsync(answer!, session);

        Assert.Equal([("INV-8", 8)], _ran);
        Assert.Contains("paid INV-8 (8)", response.Text);
    }

    [Fact]
    public async Task Responder_rejects_with_the_reviewers_reason_and_the_model_reads_it()
    {
        await using var client = AgentClient();
        var model = new ScriptedModel("pay_invoice", new() { ["invoice"] = "INV-9", ["amount"] = 9 }, "call-responder-no");
        var agent = new ChatClientAgent(model, tools: [new ApprovalRequiredAIFunction(PayInvoice())]);
        var session = await agent.CreateSessionAsync();
        var responder = new ReviewerPortalApprovalResponder(client);

        var asked = await agent.RunAsync("Pay INV-9.", session);
        var answering = responder.RespondAsync(asked);
        var approval = await PendingAsync("agent-call:call-responder-no");
        await _app.Account("alice").Reject(approval.Str("id"), new { reason = "duplicate invoice" });
        var answer = await answering;
        var response = await agent.RunAsync(answer!, session);

        Assert.Empty(_ran);
        Assert.False(Assert.IsType<ToolApprovalResponseContent>(Assert.Single(answer!.Contents)).Approved);
        Assert.Contains("duplicate invoice", model.LastToolResult);
        Assert.Contains("duplicate invoice", response.Text);
    }

    // ------------------------------------------------------------------ helpers

    private ReviewerPortalClient AgentClient() => new(new Uri("http://localhost/"), "demo-acme-agent", _app.CreateClient());

    private AIFunction PayInvoice() => AIFunctionFactory.Create((string invoice, int amount) =>
    {
        _ran.Enqueue((invoice, amount));
        return $"paid {invoice} ({amount})";
    }, "pay_invoice", "Pays an invoice.");

    private async Task<JsonElement> PendingAsync(string key)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var list = await (await _app.Account("alice").GetAsync("/api/v1/approvals?tenant=acme&state=pending&limit=100")).Json();
            var found = list.GetProperty("items").EnumerateArray()
                .Where(a => a.TryGetProperty("idempotencyKey", out var k) && k.GetString() == key).ToList();
            if (found.Count > 0)
            {
                return Assert.Single(found);
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"No pending approval with key {key}.");
    }

    /// <summary>A model without a model: asks for one function call, then says what the tool answered.</summary>
    private sealed class ScriptedModel(string function, Dictionary<string, object?> arguments, string callId) : IChatClient
    {
        public string LastToolResult { get; private set; } = "";

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var result = messages.SelectMany(m => m.Contents).OfType<FunctionResultContent>().LastOrDefault(r => r.CallId == callId);
            if (result is null)
            {
                return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, [new FunctionCallContent(callId, function, arguments)])));
            }
            LastToolResult = result.Result?.ToString() ?? "";
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, $"The tool said: {LastToolResult}")));
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            foreach (var update in (await GetResponseAsync(messages, options, cancellationToken)).ToChatResponseUpdates())
            {
                yield return update;
            }
        }

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
