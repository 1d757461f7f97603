using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml;

namespace ReviewerPortal.Features.Policies;

/// <summary>Durations as people write them: <c>90s</c>, <c>15m</c>, <c>72h</c>, <c>3d</c>, <c>hh:mm:ss</c>, <c>d.hh:mm:ss</c>, ISO 8601 <c>PT15M</c>.</summary>
public static partial class DurationText
{
    [GeneratedRegex("^([0-9]{1,9})(s|m|h|d)$")]
    private static partial Regex Short();

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        text = text?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        var match = Short().Match(text);
        if (match.Success)
        {
            var n = long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            value = match.Groups[2].Value switch
            {
                "s" => TimeSpan.FromSeconds(n),
                "m" => TimeSpan.FromMinutes(n),
                "h" => TimeSpan.FromHours(n),
                _ => TimeSpan.FromDays(n),
            };
            return true;
        }
        if (text.StartsWith('P') || text.StartsWith("-P", StringComparison.Ordinal))
        {
            try
            {
                value = XmlConvert.ToTimeSpan(text);
                return value >= TimeSpan.Zero;
            }
            catch (FormatException)
            {
                return false;
            }
        }
        return text.Contains(':') && TimeSpan.TryParseExact(text, ["c", "g"], CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
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
