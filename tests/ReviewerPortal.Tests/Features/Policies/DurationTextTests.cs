using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Tests.Features.Policies;

/// <summary>Durations as people write them (security issue: <c>72:00:00</c> was refused with a misleading range).</summary>
public sealed class DurationTextTests
{
    [Theory]
    [InlineData("30s", 30)]
    [InlineData("90m", 90 * 60)]
    [InlineData("72h", 72 * 3600)]
    [InlineData("3d", 3 * 86400)]
    [InlineData("1d12h", 36 * 3600)]
    [InlineData("1h30m", 90 * 60)]
    [InlineData("01:30:00", 90 * 60)]
    [InlineData("72:00:00", 72 * 3600)]
    [InlineData("100:30:15", 100 * 3600 + 30 * 60 + 15)]
    [InlineData("3.00:00:00", 3 * 86400)]
    [InlineData("1.12:30:00", 36 * 3600 + 30 * 60)]
    [InlineData("PT72H", 72 * 3600)]
    [InlineData("P3D", 3 * 86400)]
    [InlineData("P1DT2H", 26 * 3600)]
    [InlineData("PT90M", 90 * 60)]
    [InlineData("PT30S", 30)]
    [InlineData("P1W", 7 * 86400)]
    [InlineData(" 72h ", 72 * 3600)]
    public void Every_documented_format_parses(string text, int seconds)
    {
        Assert.True(DurationText.TryParse(text, out var value), text);
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("72")]
    [InlineData("-1h")]
    [InlineData("-PT1H")]
    [InlineData("P1M")] // a month has no fixed length
    [InlineData("P1Y")]
    [InlineData("PT")]
    [InlineData("P")]
    [InlineData("1.24:00:00")] // with a day part, hours stay below 24
    [InlineData("01:60:00")]
    [InlineData("01:00:60")]
    [InlineData("999999999d")] // beyond what a TimeSpan holds: refused, not an exception
    [InlineData("99999999999:00:00")]
    [InlineData("P99999999999D")]
    [InlineData("1h1d")]
    public void Anything_else_is_refused_without_throwing(string text)
    {
        Assert.False(DurationText.TryParse(text, out _), text);
    }

    [Fact]
    public void The_error_names_every_format_and_the_range_in_words()
    {
        var garbage = DurationText.Problem("soon", TimeSpan.FromMinutes(1), TimeSpan.FromDays(30));
        foreach (var form in new[] { "72h", "3d", "90m", "30s", "72:00:00", "3.00:00:00", "PT72H" })
        {
            Assert.Contains(form, garbage);
        }
        Assert.Contains("from 1 minute to 30 days", garbage);

        var tooLong = DurationText.Problem("31.00:00:00", TimeSpan.FromMinutes(1), TimeSpan.FromDays(30));
        Assert.Contains("31 days", tooLong);
        Assert.Contains("from 1 minute to 30 days", tooLong);

        Assert.Contains("from 10 seconds to 365 days", DurationText.Problem("1s", TimeSpan.FromSeconds(10), TimeSpan.FromDays(365)));
    }
}
