using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Queue;
using ReviewerPortal.Components.Shared;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>A pending approval as a queue card (the phone layout) and the queue's spoken announcements.</summary>
public sealed class QueueItemTests : PortalTestContext
{
    private async Task<Approval> SubmitAsync(object body)
    {
        var response = await App.Agent("acme").Submit(body);
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Json()).Str("approvalId");
        return (await App.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id))!;
    }

    [Fact]
    public async Task Card_shows_topic_env_priority_age_expiry_and_the_key_payload_fields()
    {
        var approval = await SubmitAsync(new
        {
            topic = "finance.payment.execute",
            env = "production",
            priority = "high",
            payload = new { invoice = "INV-420", amount = 420, payee = new { iban = "DE00" }, lines = new[] { 1, 2, 3 } },
        });
        var now = approval.CreatedAt.AddMinutes(12);

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, now));

        var card = cut.Find($"[data-testid=queue-row][data-id='{approval.Id}']");
        Assert.Equal($"approvals/{approval.Id}", card.GetAttribute("href"));
        Assert.Contains("finance.payment.execute", cut.Find("[data-testid=item-topic]").TextContent);
        // On a narrow card the topic may break after its dots only (finance.payment.⏎execute), never inside a word.
        Assert.Equal(2, cut.FindAll("[data-testid=item-topic] > wbr").Count);
        Assert.Equal("env production", cut.Find("[data-testid=item-env]").TextContent.Trim());
        Assert.Equal("high", cut.Find("[data-testid=item-priority]").TextContent.Trim());
        // Times read as everywhere else (When: relative text, the exact time on hover), labelled for the card.
        Assert.StartsWith("submitted ", cut.Find(".rp-age").TextContent.TrimStart());
        Assert.Equal(approval.CreatedAt.UtcDateTime.ToString("O"), cut.Find(".rp-age time").GetAttribute("datetime"));
        Assert.StartsWith("expires ", cut.Find("[data-testid=item-expiry]").TextContent.TrimStart());
        Assert.Equal(approval.ExpiresAt.UtcDateTime.ToString("O"), cut.Find("[data-testid=item-expiry] time").GetAttribute("datetime"));
        var fields = cut.FindAll("[data-testid=item-fields] > div").Select(d => (d.QuerySelector("dt")!.TextContent, d.QuerySelector("dd")!.TextContent)).ToList();
        Assert.Equal([("invoice", "INV-420"), ("amount", "420"), ("payee", "{…}"), ("lines", "[3]")], fields);
        Assert.Empty(cut.FindAll("[data-testid=flag]"));
    }

    [Fact]
    public async Task Card_says_in_words_when_the_approval_is_about_to_expire()
    {
        var approval = await SubmitAsync(new { topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-1" } });

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, approval.ExpiresAt.AddMinutes(-5)).Add(c => c.Selected, true));

        Assert.Equal("urgent", cut.Find("[data-testid=item-expiry] [data-testid=flag]").TextContent);
        Assert.Equal("true", cut.Find("[data-testid=queue-row]").GetAttribute("aria-current"));
    }

    [Fact]
    public async Task Card_shows_at_most_four_fields_cut_short_with_hidden_characters_made_visible()
    {
        var approval = await SubmitAsync(new
        {
            topic = "finance.payment.execute",
            env = "production",
            payload = new { a = "invoice\u202Efdp.exe", b = new string('x', 60), c = 3, d = true, e = "fifth", f = "sixth" },
        });

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, approval.CreatedAt));

        var values = cut.FindAll("[data-testid=item-fields] dd").Select(d => d.TextContent).ToList();
        Assert.Equal(["invoice[U+202E]fdp.exe", new string('x', 39) + "…", "3", "true"], values);
    }

    [Fact]
    public async Task A_row_is_one_component_its_times_flag_and_priority_are_its_own_markup()
    {
        // Every open queue tab holds every visible row; a component per time, flag and chip cost each row four more
        // render trees (two buffers each) in every circuit. The row shows the same thing as one component.
        var approval = await SubmitAsync(new { topic = "finance.payment.execute", env = "production", priority = "high", payload = new { invoice = "INV-7" } });

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, approval.ExpiresAt.AddMinutes(-5)).Add(c => c.Selectable, true));

        Assert.Empty(cut.FindComponents<Microsoft.AspNetCore.Components.IComponent>());
        Assert.Equal("urgent", cut.Find("[data-testid=item-expiry] [data-testid=flag]").TextContent);
        var chip = cut.Find("[data-testid=item-priority]");
        Assert.Equal("high", chip.TextContent.Trim());
        Assert.Contains("mud-chip", chip.ClassList);
        Assert.Contains("mud-chip-color-warning", chip.ClassList);
        // Each time keeps its tooltip, named by an id of its own.
        var tips = cut.FindAll(".rp-when").Select(w => w.GetAttribute("aria-describedby")).ToList();
        Assert.Equal(2, tips.Distinct().Count());
        Assert.All(tips, id => Assert.Equal("tooltip", cut.Find("#" + id).GetAttribute("role")));
    }

    [Fact]
    public async Task A_rows_times_move_on_with_the_ticker_and_read_in_the_zone_the_browser_names()
    {
        JSInterop.Setup<string>("reviewerPortal.timeZone").SetResult("America/New_York");
        var approval = await SubmitAsync(new { topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-8" } });

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, approval.CreatedAt));

        cut.WaitForAssertion(() => Assert.Contains("America/New_York", cut.Find(".rp-age .rp-when").GetAttribute("title")));
        var ticker = Services.GetRequiredService<ReviewerPortal.Features.Reading.RelativeTimeTicker>();
        Assert.Equal(1, ticker.Subscribers);
        await DisposeComponentsAsync();
        Assert.Equal(0, ticker.Subscribers);
    }

    [Fact]
    public async Task A_row_renders_again_only_when_what_it_shows_has_changed()
    {
        // Every change of the tenant reloads each open queue tab's visible rows; a row whose approval reads the same
        // (a fresh copy of the same record) costs that tab no render, a changed one and the clock's tick still do.
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        Services.AddSingleton<TimeProvider>(clock);
        var approval = await SubmitAsync(new { topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-9", amount = 9 } });
        var store = App.Services.GetRequiredService<IApprovalStore>();
        var now = approval.CreatedAt.AddMinutes(1);

        var cut = Render<QueueItem>(p => p.Add(c => c.Approval, approval).Add(c => c.Now, now).Add(c => c.Selectable, true));
        var renders = cut.RenderCount;

        var copy = (await store.GetApprovalAsync("acme", approval.Id))!;
        Assert.NotSame(approval, copy);
        cut.Render(p => p.Add(c => c.Approval, copy).Add(c => c.Now, now.AddSeconds(5)));
        Assert.Equal(renders, cut.RenderCount);

        cut.Render(p => p.Add(c => c.Picked, true));
        Assert.Equal(renders + 1, cut.RenderCount);
        Assert.True(cut.Find("[data-testid=queue-pick]").HasAttribute("checked"));

        var edited = copy with { Job = copy.Job with { Payload = System.Text.Json.JsonDocument.Parse("""{"invoice":"INV-9","amount":10}""").RootElement } };
        cut.Render(p => p.Add(c => c.Approval, edited));
        Assert.Equal(renders + 2, cut.RenderCount);
        Assert.Contains("10", cut.FindAll("[data-testid=item-fields] dd").Select(d => d.TextContent));

        cut.Render(p => p.Add(c => c.Approval, edited with { Votes = [new Vote("bob", "approve", now, null)] }));
        Assert.Equal(renders + 3, cut.RenderCount);
        Assert.Contains("1 vote", cut.Find("[data-testid=item-topic]").TextContent);

        // Minutes later the same row is urgent: the flag is what it shows, so it renders.
        cut.Render(p => p.Add(c => c.Now, approval.ExpiresAt.AddMinutes(-5)));
        Assert.Equal(renders + 4, cut.RenderCount);
        Assert.Equal("urgent", cut.Find("[data-testid=item-expiry] [data-testid=flag]").TextContent);

        // The relative times move on with the page's ticker.
        cut.WaitForState(() => Services.GetRequiredService<ReviewerPortal.Features.Reading.RelativeTimeTicker>().Subscribers == 1);
        clock.Advance(ReviewerPortal.Features.Reading.RelativeTimeTicker.Interval);
        cut.WaitForAssertion(() => Assert.Equal(renders + 5, cut.RenderCount));
    }

    [Fact]
    public async Task Queue_announces_new_and_decided_requests_politely()
    {
        SignIn("alice", Roles.Reviewer);
        var agent = App.Agent("acme");
        var first = (await agent.SubmitPayment(1)).Str("approvalId");

        var cut = Render<Queue>(p => p.Add(c => c.Tenant, "acme"));
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("[data-testid=queue-row]")));
        var announcer = cut.Find("[data-testid=queue-announcer]");
        Assert.Equal("polite", announcer.GetAttribute("aria-live"));
        Assert.Equal("", announcer.TextContent);

        await agent.SubmitPayment(2);
        cut.WaitForAssertion(() => Assert.Equal("1 new request, 2 pending", cut.Find("[data-testid=queue-announcer]").TextContent), TimeSpan.FromSeconds(5));

        await App.Account("bob").Approve(first);
        cut.WaitForAssertion(() => Assert.Equal("1 request left the queue, 1 pending", cut.Find("[data-testid=queue-announcer]").TextContent), TimeSpan.FromSeconds(5));
    }
}

/// <summary>The words the queue's live region says when the pending count moves.</summary>
public sealed class QueueChangeWordsTests
{
    [Theory]
    [InlineData(1, 3, "2 new requests, 3 pending")]
    [InlineData(3, 2, "1 request left the queue, 2 pending")]
    [InlineData(5, 1, "4 requests left the queue, 1 pending")]
    [InlineData(2, 2, null)]
    public void Queue_change_in_words(long before, long after, string? said) => Assert.Equal(said, Display.QueueChange(before, after));
}
