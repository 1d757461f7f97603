using Bunit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>The queue's bulk bar on the real decision path: preview (count, total, items that would fail), confirm, outcomes.</summary>
public sealed class BulkBarTests : PortalTestContext
{
    private static readonly Caller Alice = new("alice", false, null, new HashSet<string> { Roles.Reviewer });

    private async Task<string> SubmitAsync(int amount, string? requestedBy = null) =>
        (await (await App.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { invoice = $"INV-{amount}", amount },
            requestedBy,
        })).Json()).Str("approvalId");

    [Fact]
    public async Task Preview_counts_totals_the_amount_flags_the_item_that_would_fail_and_confirm_decides_the_rest_via_bulk()
    {
        var first = await SubmitAsync(100);
        var second = await SubmitAsync(250);
        var own = await SubmitAsync(4000, requestedBy: "alice");

        var cut = Render<BulkBar>(p => p.Add(c => c.Caller, Alice).Add(c => c.Selected, new[] { first, second, own }));
        Assert.Contains("3 approvals selected", cut.Find("[data-testid=bulk-selected]").TextContent);
        cut.Find("[data-testid=bulk-approve]").Click();

        cut.WaitForElement("[data-testid=bulk-preview-title]");
        Assert.Equal("3", cut.Find("[data-testid=bulk-count]").TextContent);
        Assert.Equal("350", cut.Find("[data-testid=bulk-total]").TextContent);
        var failing = Assert.Single(cut.FindAll("[data-testid=bulk-failing]"));
        Assert.Equal(own, failing.GetAttribute("data-id"));
        Assert.Contains("own request", failing.TextContent);
        Assert.True(cut.Find("[data-testid=bulk-confirm]").HasAttribute("disabled")); // a reason first

        cut.Find("[data-testid=bulk-reason]").Input("quarter-end batch");
        cut.Find("[data-testid=bulk-confirm]").Click();

        cut.WaitForElement("[data-testid=bulk-results]");
        var results = cut.FindAll("[data-testid=bulk-result]").ToDictionary(r => r.GetAttribute("data-id")!, r => r.GetAttribute("data-result"));
        Assert.Equal(new Dictionary<string, string?> { [first] = "approved", [second] = "approved" }, results);
        await using var scope = App.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        var rows = await db.AuditEntries.Where(e => e.Action == "approved").ToListAsync();
        Assert.Equal(new[] { first, second }.Order(), rows.Select(r => r.ApprovalId!).Order());
        Assert.All(rows, r => Assert.Equal("via: bulk", r.Details));
        Assert.All(rows, r => Assert.Equal("quarter-end batch", r.Reason));
        Assert.Equal(0, await db.AuditEntries.CountAsync(e => e.ApprovalId == own && e.Action != "submitted"));
    }

    [Fact]
    public async Task A_field_the_tenant_masks_is_not_totalled()
    {
        await Workflow.SetAsync(App, new { redactFields = new[] { "amount" } });
        var ids = new[] { await SubmitAsync(100), await SubmitAsync(250) };

        var cut = Render<BulkBar>(p => p.Add(c => c.Caller, Alice).Add(c => c.Selected, ids));
        cut.Find("[data-testid=bulk-approve]").Click();

        cut.WaitForElement("[data-testid=bulk-preview-title]");
        Assert.Equal("none", cut.Find("[data-testid=bulk-total]").TextContent);
        Assert.Contains("masked", cut.Find("[data-testid=bulk-total-note]").TextContent);
        Assert.DoesNotContain("350", cut.Markup);
    }

    [Fact]
    public async Task Ticking_rows_in_the_queue_selects_them_for_the_bulk_bar()
    {
        SignIn("alice", Roles.Reviewer);
        var ids = new[] { await SubmitAsync(1), await SubmitAsync(2), await SubmitAsync(3) };

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Equal(3, cut.FindAll("[data-testid=queue-pick]").Count));
        Assert.Empty(cut.FindAll("[data-testid=bulk-bar]"));
        cut.Find($"[data-pick='{ids[0]}']").Change(true);
        cut.Find($"[data-pick='{ids[2]}']").Change(true);

        cut.WaitForAssertion(() => Assert.Contains("2 approvals selected", cut.Find("[data-testid=bulk-selected]").TextContent));
        Assert.All(cut.FindAll("[data-testid=queue-pick]"), box => Assert.False(string.IsNullOrWhiteSpace(box.GetAttribute("aria-label"))));
    }
}
