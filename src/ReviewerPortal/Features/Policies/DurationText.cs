using System.Globalization;
using System.Text.RegularExpressions;

namespace ReviewerPortal.Features.Policies;

/// <summary>
/// Durations as people write them: <c>30s</c>, <c>90m</c>, <c>72h</c>, <c>3d</c> (or combined, largest unit first:
/// <c>1d12h</c>), <c>hh:mm:ss</c> with any number of hours (<c>72:00:00</c>), <c>d.hh:mm:ss</c> (<c>3.00:00:00</c>),
/// and ISO 8601 durations in days, weeks and time (<c>PT72H</c>, <c>P3D</c>, <c>P1DT2H</c>; not years or months,
/// which have no fixed length). Never negative; a value too large for a <see cref="TimeSpan"/> is refused, not thrown.
/// </summary>
public static partial class DurationText
{
    [GeneratedRegex(@"^(?=\d)(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?$")]
    private static partial Regex Units();

    // [d.]h:mm[:ss[.fffffff]]: hours unbounded without a day part, 0..23 with one.
    [GeneratedRegex(@"^(?:(\d{1,8})\.)?(\d{1,9}):([0-5]?\d)(?::([0-5]?\d)(?:\.(\d{1,7}))?)?$")]
    private static partial Regex Clock();

    [GeneratedRegex(@"^P(?!$)(?:(\d{1,9})W)?(?:(\d{1,9})D)?(?:T(?=\d)(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})(?:[.,](\d{1,7}))?S)?)?$")]
    private static partial Regex Iso();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text) || text.Length > 64)
        {
            return false;
        }
        decimal seconds;
        if (Units().Match(text) is { Success: true } units)
        {
            seconds = Number(units, 1) * 86400 + Number(units, 2) * 3600 + Number(units, 3) * 60 + Number(units, 4);
        }
        else if (Clock().Match(text) is { Success: true } clock)
        {
            if (clock.Groups[1].Success && Number(clock, 2) > 23)
            {
                return false;
            }
            seconds = Number(clock, 1) * 86400 + Number(clock, 2) * 3600 + Number(clock, 3) * 60 + Number(clock, 4) + Fraction(clock, 5);
        }
        else if (Iso().Match(text.ToUpperInvariant()) is { Success: true } iso)
        {
            seconds = Number(iso, 1) * 7 * 86400 + Number(iso, 2) * 86400 + Number(iso, 3) * 3600 + Number(iso, 4) * 60 + Number(iso, 5) + Fraction(iso, 6);
        }
        else
        {
            return false;
        }
        var ticks = seconds * TimeSpan.TicksPerSecond;
        if (ticks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }
        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }

    private static decimal Number(Match match, int group) =>
        match.Groups[group].Success ? decimal.Parse(match.Groups[group].Value, NumberStyles.None, CultureInfo.InvariantCulture) : 0;

    private static decimal Fraction(Match match, int group) =>
        match.Groups[group].Success ? decimal.Parse("0." + match.Groups[group].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture) : 0;

    /// <summary>The forms <see cref="TryParse"/> accepts, for error messages.</summary>
    public const string Forms = "72h, 3d, 90m, 30s (or combined: 1d12h), hh:mm:ss with any number of hours (72:00:00), d.hh:mm:ss (3.00:00:00) or ISO 8601 (PT72H, P3D, P1DT2H)";

    /// <summary>What is wrong with <paramref name="text"/> as a duration from <paramref name="min"/> to <paramref name="max"/>: the forms and the range.</summary>
    public static string Problem(string? text, TimeSpan min, TimeSpan max) =>
        TryParse(text, out var value)
            ? $"{Words(value)} is out of range: a duration from {Words(min)} to {Words(max)}, written as {Forms}."
            : $"Not a duration: write {Forms}; from {Words(min)} to {Words(max)}.";

    /// <summary>A duration in words, in its largest exact unit: <c>30 days</c>, <c>1 minute</c>, <c>90 seconds</c>.</summary>
    public static string Words(TimeSpan value)
    {
        static string Of(long n, string unit) => n == 1 ? $"1 {unit}" : $"{n} {unit}s";
        if (value.Ticks % TimeSpan.TicksPerSecond != 0 || value <= TimeSpan.Zero)
        {
            return value.ToString("c", CultureInfo.InvariantCulture);
        }
        return value.Ticks % TimeSpan.TicksPerDay == 0 ? Of(value.Ticks / TimeSpan.TicksPerDay, "day")
            : value.Ticks % TimeSpan.TicksPerHour == 0 ? Of(value.Ticks / TimeSpan.TicksPerHour, "hour")
            : value.Ticks % TimeSpan.TicksPerMinute == 0 ? Of(value.Ticks / TimeSpan.TicksPerMinute, "minute")
            : Of(value.Ticks / TimeSpan.TicksPerSecond, "second");
    }

    /// <summary>The shortest exact form among <c>Nd</c>, <c>Nh</c>, <c>Nm</c>, <c>Ns</c>; otherwise <c>d.hh:mm:ss.fff</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value > TimeSpan.Zero && value.Ticks % TimeSpan.TicksPerSecond == 0)
        {
            if (value.Ticks % TimeSpan.TicksPerDay == 0)
            {
                return $"{value.Ticks / TimeSpan.TicksPerDay}d";
            }
            if (value.Ticks % TimeSpan.TicksPerHour == 0)
            {
                return $"{value.Ticks / TimeSpan.TicksPerHour}h";
            }
            if (value.Ticks % TimeSpan.TicksPerMinute == 0)
            {
                return $"{value.Ticks / TimeSpan.TicksPerMinute}m";
            }
            return $"{value.Ticks / TimeSpan.TicksPerSecond}s";
        }
        return value.ToString("c", CultureInfo.InvariantCulture);
    }
}
