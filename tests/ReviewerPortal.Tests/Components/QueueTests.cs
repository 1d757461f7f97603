using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
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

    [Fact]
    public async Task Priority_and_age_filters_narrow_the_queue_and_clearing_them_brings_every_row_back()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        var payment = (await agent.SubmitPayment(5)).Str("approvalId");
        var low = (await (await agent.Submit(new { topic = "customer.notify", env = "production", channel = "external", priority = "low", payload = new { to = "c-7" } })).Json()).Str("approvalId");

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal([payment, low], RowIds(cut)));

        var priority = cut.Find("select[data-testid=queue-priority]");
        Assert.Equal("Priority", cut.Find($"label[for='{priority.Id}']").TextContent.Trim());
        priority.Change("low");
        cut.WaitForAssertion(() => Assert.Equal([low], RowIds(cut)));
        cut.Find("select[data-testid=queue-priority]").Change("");
        cut.WaitForAssertion(() => Assert.Equal([payment, low], RowIds(cut)));

        // Both were submitted a moment ago: none is older than 15 minutes.
        cut.Find("select[data-testid=queue-age]").Change("15m");
        cut.WaitForElement("[data-testid=queue-empty]");
        cut.Find("select[data-testid=queue-age]").Change("");
        cut.WaitForAssertion(() => Assert.Equal([payment, low], RowIds(cut)));
    }

    [Fact]
    public async Task Env_filter_waits_for_a_pause_in_typing_and_the_tenant_picker_opens_the_chosen_tenants_queue()
    {
        SignIn("oscar", Roles.OnCall);
        var payment = (await App.Agent("acme").SubmitPayment(5)).Str("approvalId");
        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal([payment], RowIds(cut)));

        cut.Find("input[data-testid=queue-env]").Input("staging");
        cut.WaitForElement("[data-testid=queue-empty]", TimeSpan.FromSeconds(5));
        cut.Find("input[data-testid=queue-env]").Input("prod");
        cut.WaitForAssertion(() => Assert.Equal([payment], RowIds(cut)), TimeSpan.FromSeconds(5));

        var tenants = cut.Find("select[data-testid=tenant-select]");
        Assert.Equal(["acme", "globex"], tenants.QuerySelectorAll("option").Select(o => o.GetAttribute("value")!).Where(v => v is "acme" or "globex").ToArray());
        tenants.Change("globex");
        // The change may wait for a live reload the page is rendering to finish: the navigation follows it.
        cut.WaitForAssertion(() => Assert.EndsWith("/queue/globex", Services.GetRequiredService<NavigationManager>().Uri, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_page_around_the_rows_is_a_handful_of_components_every_open_tab_holds_only_those()
    {
        // Each open queue tab keeps its component tree (and two render buffers per component) on the server for as long
        // as it is open: the filter bar and chart are plain labelled controls and SVG, not dozens of library components.
        SignIn("alice", Roles.Reviewer);
        for (var i = 1; i <= 3; i++)
        {
            await App.Agent("acme").SubmitPayment(i);
        }
        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal(3, RowIds(cut).Count));

        var around = cut.FindComponents<IComponent>().Select(c => c.Instance).Where(c => c is not QueueItem).ToList();
        Assert.True(around.Count <= 12, $"{around.Count} components around the rows: {string.Join(", ", around.Select(c => c.GetType().Name))}");
        foreach (var label in new[] { "Tenant", "Search topic, submitter, payload", "Priority", "Env", "Older than", "Notify me of new approvals" })
        {
            var control = cut.FindAll("label").Single(l => l.TextContent.Trim() == label);
            Assert.NotNull(cut.Find($"#{control.GetAttribute("for")}"));
        }
        Assert.NotNull(cut.Find("[data-testid=age-histogram] svg[role=img][aria-label^='Pending by age']"));
    }
}
