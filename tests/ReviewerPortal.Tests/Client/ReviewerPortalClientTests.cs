using System.Net.Http.Json;
using ReviewerPortal.Client;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Client;

/// <summary>The .NET client against the running app over real sockets (hub and long-poll).</summary>
public sealed class ReviewerPortalClientTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(kestrel: true);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ReviewerPortalClient Client(string token) => new(new Uri(_app.BaseUrl), token);

    private static JobSubmission Payment(int n) =>
        new("finance.payment.execute", "production", new { invoice = $"INV-{n}", amount = n }, Priority: "high");

    [Fact]
    public async Task Agent_waiting_on_the_hub_wakes_when_a_reviewer_approves()
    {
        await using var agent = Client("demo-acme-agent");
        await using var reviewer = Client("demo-alice-token");
        await agent.ConnectAsync();
        Assert.True(agent.HubConnected);

        var submitted = await agent.SubmitAsync(Payment(1));
        Assert.True(submitted.NeedsHuman);
        var waiting = agent.WaitForDecisionAsync(submitted.ApprovalId!, TimeSpan.FromSeconds(30));
        var started = System.Diagnostics.Stopwatch.StartNew();
        var decision = await reviewer.ApproveAsync(submitted.ApprovalId!, "ok", submitted.JobHash, submitted.PolicySnapshot);
        var approval = await waiting;

        Assert.Equal("approved", decision.Result);
        Assert.Equal("approved", approval!.State);
        Assert.Equal("alice", approval.DecidedBy);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), "woke on the decision, not the timeout");
        Assert.Equal("already_approved", (await reviewer.ApproveAsync(submitted.ApprovalId!)).Result);
    }

    [Fact]
    public async Task Without_the_hub_the_wait_long_polls_and_times_out_pending()
    {
        await using var agent = Client("demo-acme-agent");
        var submitted = await agent.SubmitAsync(Payment(2));

        var stillPending = await agent.WaitForDecisionAsync(submitted.ApprovalId!, TimeSpan.FromSeconds(1));
        Assert.True(stillPending!.IsPending);

        var waiting = agent.WaitForDecisionAsync(submitted.ApprovalId!, TimeSpan.FromSeconds(30));
        await using var reviewer = Client("demo-bob-token");
        await reviewer.RejectAsync(submitted.ApprovalId!, "duplicate");
        Assert.Equal("rejected", (await waiting)!.State);
    }

    [Fact]
    public async Task Executor_records_a_side_effect_once_and_a_retry_gets_the_first_result()
    {
        await using var agent = Client("demo-acme-agent");
        await using var reviewer = Client("demo-alice-token");
        var submitted = await agent.SubmitAsync(Payment(4));
        await reviewer.ApproveAsync(submitted.ApprovalId!);

        var first = await agent.RecordSideEffectAsync(submitted.ApprovalId!, "transfer", new { tx = "T-1" }, submitted.JobHash, submitted.PolicySnapshot);
        var retry = await agent.RecordSideEffectAsync(submitted.ApprovalId!, "transfer", new { tx = "T-2" }, submitted.JobHash, submitted.PolicySnapshot);

        Assert.True(first.FirstTime);
        Assert.False(retry.FirstTime);
        Assert.Equal("T-1", retry.Result.GetProperty("tx").GetString());
        var tampered = await Assert.ThrowsAsync<ReviewerPortalException>(() =>
            agent.RecordSideEffectAsync(submitted.ApprovalId!, "notify", 1, jobHash: new string('b', 64)));
        Assert.Equal("job_changed", tampered.Code);
    }

    [Fact]
    public async Task Policy_answers_and_api_errors_come_back_typed()
    {
        await using var agent = Client("demo-acme-agent");

        Assert.Equal("allow", (await agent.SubmitAsync(new JobSubmission("knowledge.read", "production", new { q = 1 }))).Decision);
        var denied = await agent.SubmitAsync(new JobSubmission("secrets.export", "production", new { }));
        Assert.Equal("deny", denied.Decision);
        Assert.Equal("deny-secrets-export", denied.RuleId);

        var submitted = await agent.SubmitAsync(Payment(3));
        await using var reviewer = Client("demo-alice-token");
        var conflict = await Assert.ThrowsAsync<ReviewerPortalException>(() => reviewer.ApproveAsync(submitted.ApprovalId!, jobHash: new string('f', 64)));
        Assert.Equal(409, conflict.Status);
        Assert.Equal("job_changed", conflict.Code);
        await using var gina = Client("demo-gina-token");
        Assert.Null(await gina.GetAsync(submitted.ApprovalId!));
    }

    [Fact]
    public async Task Agent_learns_changes_were_requested_resubmits_and_gets_the_approval()
    {
        await using var agent = Client("demo-acme-agent");
        await using var reviewer = Client("demo-bob-token");
        var submitted = await agent.SubmitAsync(Payment(3) with { RequestedBy = "alice" });

        var waiting = agent.WaitForDecisionAsync(submitted.ApprovalId!, TimeSpan.FromSeconds(30));
        await reviewer.RequestChangesAsync(submitted.ApprovalId!, "split the payment");
        var seen = await waiting;
        Assert.True(seen!.IsChangesRequested);
        Assert.Equal("split the payment", seen.ChangesReason);

        var resubmitted = await agent.ResubmitAsync(submitted.ApprovalId!, new { invoice = "INV-3", amount = 1 }, "split-1");
        Assert.Equal(2, resubmitted.Approval.Version);
        Assert.Equal("already_resubmitted", (await agent.ResubmitAsync(submitted.ApprovalId!, new { invoice = "INV-3", amount = 1 }, "split-1")).Result);
        await using var alice = Client("demo-alice-token");
        var denied = await Assert.ThrowsAsync<ReviewerPortalException>(() => alice.ApproveAsync(submitted.ApprovalId!));
        Assert.Equal("requester_may_not_approve", denied.Code);
        Assert.Equal("approved", (await reviewer.ApproveAsync(submitted.ApprovalId!, "ok")).State);
    }

    [Fact]
    public async Task Agent_opens_a_case_hands_in_documents_and_reads_the_outcome()
    {
        await using var agent = Client("demo-acme-agent");
        await using var other = Client("demo-globex-agent");

        var opened = await agent.OpenCaseAsync("Onboarding Initech", ["passport"], maxIterations: 3, window: TimeSpan.FromDays(30),
            documentDeadline: TimeSpan.FromDays(7), idempotencyKey: "initech-1");
        Assert.True(opened.WantsDocuments);
        Assert.Equal(3, opened.MaxIterations);
        Assert.Equal(opened.OpenedAt.AddDays(7), opened.NextDeadline);
        Assert.Equal(opened.Id, (await agent.OpenCaseAsync("Onboarding Initech", ["passport"], idempotencyKey: "initech-1")).Id);

        var submitted = await agent.SubmitDocumentsAsync(opened.Id, new { passport = "p-1.pdf" });
        Assert.Equal("in_review", submitted.State);
        var decided = await _app.Account("alice").PostAsJsonAsync($"/api/v1/cases/{opened.Id}/decision", new { decision = "approve" });
        Assert.True(decided.IsSuccessStatusCode);

        var read = await agent.GetCaseAsync(opened.Id);
        Assert.True(read!.IsClosed);
        Assert.Equal("approved", read.State);
        Assert.Equal(1, read.Iteration);
        Assert.Null(await other.GetCaseAsync(opened.Id));
    }
}
