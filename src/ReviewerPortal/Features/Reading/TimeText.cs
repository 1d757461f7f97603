using System.Globalization;

namespace ReviewerPortal.Features.Reading;

/// <summary>
/// The portal's one way of writing times and durations: relative ("12 min ago", "in 3 h") for reading at a glance,
/// the exact time in the reviewer's own zone ("2026-12-04 08:22:35 Europe/Berlin (UTC+01:00)") for the record, and
/// durations as a person says them ("23 h 59 min", "2 d 4 h", "45 s").
/// </summary>
public static partial class TimeText
{
    private const int MaxZoneLength = 64;

    /// <summary>
    /// The IANA zone the browser names; UTC for anything unknown or hostile. The id becomes a file path under the
    /// system's zoneinfo folder, so only the characters IANA names use are accepted (no dots, no leading slash).
    /// </summary>
    public static TimeZoneInfo Zone(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxZoneLength || id[0] == '/' || !id.All(IsZoneChar))
        {
            return TimeZoneInfo.Utc;
        }
        if (id is "UTC" or "Etc/UTC")
        {
            return TimeZoneInfo.Utc;
        }
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException or ArgumentException or IOException
            or UnauthorizedAccessException or System.Security.SecurityException)
        {
            return TimeZoneInfo.Utc;
        }
    }

    private static bool IsZoneChar(char c) => c is (>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '/' or '_' or '-' or '+';

    /// <summary>The exact time in <paramref name="zone"/>, to the second, naming the zone and its offset at that instant.</summary>
    public static string Exact(DateTimeOffset at, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(at, zone);
        var text = local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        if (zone == TimeZoneInfo.Utc)
        {
            return text + " UTC";
        }
        var offset = local.Offset;
        var sign = offset < TimeSpan.Zero ? "-" : "+";
        return $"{text} {zone.Id} (UTC{sign}{offset.Duration().ToString(@"hh\:mm", CultureInfo.InvariantCulture)})";
    }

    /// <summary>Midnight starting <paramref name="date"/> in <paramref name="zone"/> (an hour later where midnight is skipped).</summary>
    public static DateTimeOffset StartOfDay(DateTime date, TimeZoneInfo zone)
    {
        var local = DateTime.SpecifyKind(date.Date, DateTimeKind.Unspecified);
        while (zone.IsInvalidTime(local))
        {
            local = local.AddMinutes(30);
        }
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    /// <summary>"12 min ago", "in 3 h 20 min"; under a minute either way, "just now" / "in under a minute".</summary>
    public static string Relative(DateTimeOffset at, DateTimeOffset now)
    {
        var delta = at - now;
        var size = delta.Duration();
        if (size < TimeSpan.FromMinutes(1))
        {
            return delta > TimeSpan.Zero ? "in under a minute" : "just now";
        }
        var text = Duration(TimeSpan.FromMinutes(Math.Floor(size.TotalMinutes)));
        return delta > TimeSpan.Zero ? $"in {text}" : $"{text} ago";
    }

    /// <summary>
    /// A non-negative duration in its two largest units, the second left out when zero: "45 s", "12 min",
    /// "23 h 59 min", "2 d 4 h". A negative span (a deadline already passed) reads "0 s".
    /// </summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero)
        {
            span = TimeSpan.Zero;
        }
        if (span < TimeSpan.FromMinutes(1))
        {
            return $"{(long)span.TotalSeconds} s";
        }
        if (span < TimeSpan.FromHours(1))
        {
            return $"{(long)span.TotalMinutes} min";
        }
        if (span < TimeSpan.FromDays(1))
        {
            return span.Minutes == 0 ? $"{(long)span.TotalHours} h" : $"{(long)span.TotalHours} h {span.Minutes} min";
        }
        return span.Hours == 0 ? $"{(long)span.TotalDays} d" : $"{(long)span.TotalDays} d {span.Hours} h";
    }

    /// <summary>
    /// Text split around the ISO 8601 timestamps written into it (audit reasons such as "expires
    /// 2026-12-04T07:22:35.3225793+00:00"), so each can be shown like every other time. The stored text is unchanged.
    /// </summary>
    public static IReadOnlyList<(string Text, DateTimeOffset? At)> SplitTimestamps(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return [];
        }
        var parts = new List<(string, DateTimeOffset?)>();
        var pending = new System.Text.StringBuilder();
        var last = 0;
        foreach (System.Text.RegularExpressions.Match match in Timestamp().Matches(text))
        {
            pending.Append(text, last, match.Index - last);
            last = match.Index + match.Length;
            if (!DateTimeOffset.TryParse(match.Value, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var at))
            {
                pending.Append(match.Value);
                continue;
            }
            if (pending.Length > 0)
            {
                parts.Add((pending.ToString(), null));
                pending.Clear();
            }
            parts.Add((match.Value, at));
        }
        pending.Append(text, last, text.Length - last);
        if (pending.Length > 0)
        {
            parts.Add((pending.ToString(), null));
        }
        return parts;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?(?:Z|[+-]\d{2}:\d{2})")]
    private static partial System.Text.RegularExpressions.Regex Timestamp();
}
