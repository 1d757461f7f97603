using Bunit;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

public sealed class QueueTests : PortalTestContext
{
    private IReadOnlyList<string> RowIds(IRenderedComponent<Queue> cut) =>
        [.. cut.FindAll("[data-testid=queue-row]").Select(r => r.GetAttribute("data-id")!)];

    [Fact]
    public async Task Queue_lists_pending_oldest_first_and_follows_submissions_and_decisions_live()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        var first = (await agent.SubmitPayment(1)).Str("approvalId");
        var second = (await agent.SubmitPayment(2)).Str("approvalId");

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal([first, second], RowIds(cut)));
        Assert.Equal("2", cut.Find("[data-testid=pending-count]").TextContent);

        var third = (await agent.SubmitPayment(3)).Str("approvalId");
        cut.WaitForAssertion(() => Assert.Equal([first, second, third], RowIds(cut)), TimeSpan.FromSeconds(5));

        await App.Account("bob").Approve(first);
        cut.WaitForAssertion(() => Assert.Equal([second, third], RowIds(cut)), TimeSpan.FromSeconds(5));
        Assert.Equal("2", cut.Find("[data-testid=pending-count]").TextContent);
        Assert.Equal("2", cut.Find("[data-bucket='<5m']").TextContent);
    }

    [Fact]
    public async Task Rows_show_the_quorum_votes_so_far()
    {
        SignIn("alice", Roles.Reviewer);
        await ReviewerPortal.Tests.Features.Approvals.Workflow.SetAsync(App, new { quorum = new { required = 2, of = 2 } });
        var agent = App.Agent("acme");
        var voted = (await agent.SubmitPayment(1)).Str("approvalId");
        await App.Account("bob").Approve(voted);
        var plain = (await agent.SubmitPayment(2)).Str("approvalId");

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal([voted, plain], RowIds(cut)));

        Assert.Contains("1 vote", cut.Find($"[data-id='{voted}'] .rp-topic").TextContent);
        Assert.DoesNotContain("vote", cut.Find($"[data-id='{plain}'] .rp-topic").TextContent);
        Assert.Empty(cut.FindAll("[data-testid=row-escalated]"));
    }

    [Fact]
    public async Task Other_tenants_submissions_never_show_and_their_queue_is_not_found()
    {
        SignIn("gina", Roles.Reviewer);
        await App.Agent("acme").SubmitPayment(1);

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));

        cut.WaitForElement("[data-testid=not-found]");
        Assert.Empty(cut.FindAll("[data-testid=queue-row]"));
    }

    [Fact]
    public async Task Search_filters_the_queue()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        await agent.SubmitPayment(11);
        var notify = await agent.Submit(new { topic = "customer.notify", env = "production", channel = "external", payload = new { to = "c-42" } });
        var notifyId = (await notify.Json()).Str("approvalId");

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal(2, RowIds(cut).Count));
        cut.Find("input[data-testid=queue-search], [data-testid=queue-search] input").Input("c-42");

        cut.WaitForAssertion(() => Assert.Equal([notifyId], RowIds(cut)), TimeSpan.FromSeconds(5));
    }
}
