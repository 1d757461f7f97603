using Bunit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Components.Shared;
using ReviewerPortal.Features.Reading;

namespace ReviewerPortal.Tests.Components;

/// <summary>The one component that shows a time: relative text, the exact local time on hover and on focus, live.</summary>
public sealed class WhenTests : BunitContext
{
    private static readonly DateTimeOffset Start = new(2026, 7, 1, 10, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _clock = new(Start);
    private readonly ReaderContext _reader = new();

    public WhenTests()
    {
        Services.AddSingleton<TimeProvider>(_clock);
        Services.AddSingleton(_reader);
        Services.AddScoped<RelativeTimeTicker>();
        JSInterop.Mode = JSRuntimeMode.Loose;
    }

    [Fact]
    public void Shows_relative_text_with_the_exact_local_time_in_the_title_and_a_tooltip_reached_by_keyboard()
    {
        _reader.Apply(new ReaderPreferences(TimeText.Zone("Europe/Berlin"), true, ThemeChoice.System, false));

        var cut = Render<When>(p => p.Add(c => c.At, Start.AddMinutes(-12)));

        var when = cut.Find(".rp-when");
        Assert.Equal("12 min ago", cut.Find("time").TextContent);
        Assert.Equal("2026-07-01T09:48:00.0000000Z", cut.Find("time").GetAttribute("datetime"));
        Assert.Equal("2026-07-01 11:48:00 Europe/Berlin (UTC+02:00)", when.GetAttribute("title"));
        Assert.Equal("0", when.GetAttribute("tabindex"));
        var tip = cut.Find("#" + when.GetAttribute("aria-describedby"));
        Assert.Equal("tooltip", tip.GetAttribute("role"));
        Assert.Equal("2026-07-01 11:48:00 Europe/Berlin (UTC+02:00)", tip.TextContent);
    }

    [Fact]
    public void In_new_york_a_future_time_reads_in_hours_and_its_zone_offset()
    {
        _reader.Apply(new ReaderPreferences(TimeText.Zone("America/New_York"), true, ThemeChoice.System, false));

        var cut = Render<When>(p => p.Add(c => c.At, Start.AddHours(3)));

        Assert.Equal("in 3 h", cut.Find("time").TextContent);
        Assert.Equal("2026-07-01 09:00:00 America/New_York (UTC-04:00)", cut.Find(".rp-when").GetAttribute("title"));
    }

    [Fact]
    public void Inside_a_link_it_is_not_a_second_tab_stop()
    {
        var cut = Render<When>(p => p.Add(c => c.At, Start).Add(c => c.Focusable, false));
        Assert.False(cut.Find(".rp-when").HasAttribute("tabindex"));
        Assert.Equal("2026-07-01 10:00:00 UTC", cut.Find(".rp-when").GetAttribute("title"));
    }

    [Fact]
    public async Task Text_moves_on_with_the_clock_every_30_seconds_and_the_timer_ends_with_the_page()
    {
        var cut = Render<When>(p => p.Add(c => c.At, Start.AddMinutes(-12)));
        Assert.Equal("12 min ago", cut.Find("time").TextContent);
        var ticker = Services.GetRequiredService<RelativeTimeTicker>();
        Assert.Equal(1, ticker.Subscribers);

        _clock.Advance(TimeSpan.FromSeconds(30));
        _clock.Advance(TimeSpan.FromSeconds(30));
        cut.WaitForAssertion(() => Assert.Equal("13 min ago", cut.Find("time").TextContent));

        await DisposeComponentsAsync();
        Assert.Equal(0, ticker.Subscribers);
        Assert.False(ticker.Running);
    }

    [Fact]
    public void Without_the_zone_cookie_the_browser_is_asked_once()
    {
        var ask = JSInterop.Setup<string>("reviewerPortal.timeZone");
        ask.SetResult("America/New_York");

        var cut = Render<When>(p => p.Add(c => c.At, Start));
        Render<When>(p => p.Add(c => c.At, Start.AddDays(-1)));

        cut.WaitForAssertion(() => Assert.Equal("2026-07-01 06:00:00 America/New_York (UTC-04:00)", cut.Find(".rp-when").GetAttribute("title")));
        Assert.Single(JSInterop.Invocations, i => i.Identifier == "reviewerPortal.timeZone");
    }

    [Fact]
    public void A_hostile_zone_from_the_browser_is_utc()
    {
        JSInterop.Setup<string>("reviewerPortal.timeZone").SetResult("../../etc/passwd");

        var cut = Render<When>(p => p.Add(c => c.At, Start));

        cut.WaitForAssertion(() => Assert.Single(JSInterop.Invocations, i => i.Identifier == "reviewerPortal.timeZone"));
        Assert.Equal("2026-07-01 10:00:00 UTC", cut.Find(".rp-when").GetAttribute("title"));
    }
}
