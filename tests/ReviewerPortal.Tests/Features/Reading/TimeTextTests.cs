using Microsoft.AspNetCore.Http;
using ReviewerPortal.Features.Reading;

namespace ReviewerPortal.Tests.Features.Reading;

public sealed class TimeTextTests
{
    [Theory]
    // Berlin: CET (+01:00) in winter, CEST (+02:00) from 2026-03-29 01:00 UTC.
    [InlineData("Europe/Berlin", "2026-12-04T07:22:35.3225793+00:00", "2026-12-04 08:22:35 Europe/Berlin (UTC+01:00)")]
    [InlineData("Europe/Berlin", "2026-03-29T00:59:59Z", "2026-03-29 01:59:59 Europe/Berlin (UTC+01:00)")]
    [InlineData("Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-29 03:00:00 Europe/Berlin (UTC+02:00)")]
    [InlineData("Europe/Berlin", "2026-10-25T01:00:00Z", "2026-10-25 02:00:00 Europe/Berlin (UTC+01:00)")]
    // New York: EST (-05:00), EDT (-04:00) from 2026-03-08 07:00 UTC.
    [InlineData("America/New_York", "2026-03-08T06:59:59Z", "2026-03-08 01:59:59 America/New_York (UTC-05:00)")]
    [InlineData("America/New_York", "2026-03-08T07:00:00Z", "2026-03-08 03:00:00 America/New_York (UTC-04:00)")]
    [InlineData("America/New_York", "2026-07-01T03:30:00Z", "2026-06-30 23:30:00 America/New_York (UTC-04:00)")]
    [InlineData("UTC", "2026-07-01T03:30:00+02:00", "2026-07-01 01:30:00 UTC")]
    public void Exact_time_is_in_the_reviewers_zone_across_daylight_saving(string zone, string at, string expected) =>
        Assert.Equal(expected, TimeText.Exact(DateTimeOffset.Parse(at, System.Globalization.CultureInfo.InvariantCulture), TimeText.Zone(zone)));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Mars/Olympus_Mons")]
    [InlineData("../../../../etc/passwd")]
    [InlineData("/etc/localtime")]
    [InlineData("Europe/Berlin\r\nSet-Cookie: x=1")]
    [InlineData("<script>alert(1)</script>")]
    [InlineData("W. Europe Standard Time")]
    [InlineData("Europe/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public void Unknown_or_hostile_zone_falls_back_to_utc(string? zone) =>
        Assert.Same(TimeZoneInfo.Utc, TimeText.Zone(zone));

    [Fact]
    public void Hostile_zone_cookie_reads_as_utc_and_a_real_one_as_its_zone()
    {
        Assert.Same(TimeZoneInfo.Utc, ReaderPreferences.FromCookies(Request("rp-tz=..%2F..%2F..%2Fetc%2Fpasswd")).TimeZone);
        Assert.Same(TimeZoneInfo.Utc, ReaderPreferences.FromCookies(Request("rp-tz=%00")).TimeZone);
        var berlin = ReaderPreferences.FromCookies(Request("rp-tz=Europe%2FBerlin; rp-dark=1; rp-theme=dark"));
        Assert.Equal("Europe/Berlin", berlin.TimeZone.Id);
        Assert.True(berlin.ZoneFromBrowser);
        Assert.True(berlin.SystemDark);
        Assert.Equal(ThemeChoice.Dark, berlin.Theme);
        var none = ReaderPreferences.FromCookies(Request("rp-theme=<b>"));
        Assert.False(none.ZoneFromBrowser);
        Assert.Equal(ThemeChoice.System, none.Theme);
    }

    private static HttpRequest Request(string cookie)
    {
        var http = new DefaultHttpContext();
        http.Request.Headers.Cookie = cookie;
        return http.Request;
    }

    [Theory]
    [InlineData(-12 * 60, "12 min ago")]
    [InlineData(-12 * 60 - 59, "12 min ago")]
    [InlineData(3 * 3600, "in 3 h")]
    [InlineData(3 * 3600 + 20 * 60, "in 3 h 20 min")]
    [InlineData(-30, "just now")]
    [InlineData(0, "just now")]
    [InlineData(20, "in under a minute")]
    [InlineData(90, "in 1 min")]
    [InlineData(-(23 * 3600 + 59 * 60 + 30), "23 h 59 min ago")]
    [InlineData(-(2 * 86400 + 4 * 3600 + 5 * 60), "2 d 4 h ago")]
    [InlineData(7 * 86400, "in 7 d")]
    public void Relative_text_reads_like_a_person_would_say_it(int seconds, string expected)
    {
        var now = new DateTimeOffset(2026, 12, 4, 7, 22, 35, TimeSpan.Zero);
        Assert.Equal(expected, TimeText.Relative(now.AddSeconds(seconds), now));
    }

    [Theory]
    [InlineData(45, "45 s")]
    [InlineData(0, "0 s")]
    [InlineData(-5, "0 s")]
    [InlineData(60, "1 min")]
    [InlineData(59 * 60 + 59, "59 min")]
    [InlineData(3600, "1 h")]
    [InlineData(23 * 3600 + 59 * 60, "23 h 59 min")]
    [InlineData(2 * 86400 + 4 * 3600 + 5 * 60, "2 d 4 h")]
    [InlineData(3 * 86400, "3 d")]
    public void Durations_are_human(int seconds, string expected) =>
        Assert.Equal(expected, TimeText.Duration(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Timestamps_inside_audit_text_are_found_for_display()
    {
        var parts = TimeText.SplitTimestamps("rule r1; expires 2026-12-04T07:22:35.3225793+00:00 then 2026-12-05T08:00:00Z.");

        Assert.Equal(5, parts.Count);
        Assert.Equal(("rule r1; expires ", (DateTimeOffset?)null), parts[0]);
        Assert.Equal(new DateTimeOffset(2026, 12, 4, 7, 22, 35, TimeSpan.Zero).AddTicks(3225793), parts[1].At);
        Assert.Equal(" then ", parts[2].Text);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 8, 0, 0, TimeSpan.Zero), parts[3].At);
        Assert.Equal(".", parts[4].Text);
        Assert.Equal([("no time here", (DateTimeOffset?)null)], TimeText.SplitTimestamps("no time here"));
        Assert.Empty(TimeText.SplitTimestamps(null));
        // Not a real instant: left as text.
        Assert.Equal([("2026-13-45T99:00:00Z", (DateTimeOffset?)null)], TimeText.SplitTimestamps("2026-13-45T99:00:00Z"));
    }

    [Theory]
    [InlineData("Europe/Berlin", "2026-07-01", "2026-06-30T22:00:00Z")]
    [InlineData("Europe/Berlin", "2026-12-04", "2026-12-03T23:00:00Z")]
    [InlineData("America/New_York", "2026-03-08", "2026-03-08T05:00:00Z")]
    [InlineData("America/New_York", "2026-03-09", "2026-03-09T04:00:00Z")]
    [InlineData("UTC", "2026-03-09", "2026-03-09T00:00:00Z")]
    public void Audit_date_filters_start_at_midnight_in_the_reviewers_zone(string zone, string day, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture),
            TimeText.StartOfDay(DateTime.Parse(day, System.Globalization.CultureInfo.InvariantCulture), TimeText.Zone(zone)));
}
