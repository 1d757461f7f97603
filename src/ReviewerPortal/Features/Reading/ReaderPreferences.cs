using Microsoft.JSInterop;

namespace ReviewerPortal.Features.Reading;

public enum ThemeChoice { System, Light, Dark }

/// <summary>
/// How one reviewer reads the portal: their time zone and their theme. The browser reports its zone and its
/// colour-scheme preference in two cookies (set by assets/js/reader.js on every page, before the page's own scripts),
/// so a server-side prerender already shows local times and the right theme; the theme a signed-in account chose
/// comes from the account (see <see cref="ThemeStore"/>).
/// </summary>
public sealed record ReaderPreferences(TimeZoneInfo TimeZone, bool ZoneFromBrowser, ThemeChoice Theme, bool SystemDark)
{
    public const string ZoneCookie = "rp-tz";
    public const string DarkCookie = "rp-dark";
    public const string ThemeCookie = "rp-theme";

    public static readonly ReaderPreferences Default = new(TimeZoneInfo.Utc, false, ThemeChoice.System, false);

    public bool IsDark => Theme == ThemeChoice.Dark || (Theme == ThemeChoice.System && SystemDark);

    public static ReaderPreferences FromCookies(HttpRequest request)
    {
        var zoneId = request.Cookies[ZoneCookie];
        var zone = TimeText.Zone(zoneId);
        return new ReaderPreferences(zone, zone != TimeZoneInfo.Utc || zoneId is "UTC" or "Etc/UTC",
            ParseTheme(request.Cookies[ThemeCookie]) ?? ThemeChoice.System, request.Cookies[DarkCookie] == "1");
    }

    public static ThemeChoice? ParseTheme(string? value) => value switch
    {
        "light" => ThemeChoice.Light,
        "dark" => ThemeChoice.Dark,
        "system" => ThemeChoice.System,
        _ => null,
    };

    public static string Name(ThemeChoice theme) => theme switch
    {
        ThemeChoice.Light => "light",
        ThemeChoice.Dark => "dark",
        _ => "system",
    };
}

/// <summary>
/// The reviewer's preferences for this page (scoped: one per request and one per circuit). The app root hands the
/// values it read from the request to the circuit; when the zone cookie was missing (the first page ever), the
/// browser is asked once over JS interop.
/// </summary>
public sealed class ReaderContext
{
    private Task<TimeZoneInfo>? _asking;

    public ReaderPreferences Preferences { get; private set; } = ReaderPreferences.Default;

    public TimeZoneInfo TimeZone => Preferences.TimeZone;

    public void Apply(ReaderPreferences preferences) => Preferences = preferences;

    public void ChooseTheme(ThemeChoice theme) => Preferences = Preferences with { Theme = theme };

    public void SystemDarkIs(bool dark) => Preferences = Preferences with { SystemDark = dark };

    /// <summary>
    /// The zone, asking the browser (once per circuit) if no cookie told it; true when it is not
    /// <paramref name="renderedIn"/>, the zone a component's times were rendered in (it renders again).
    /// </summary>
    public async Task<bool> LearnZoneAsync(IJSRuntime js, TimeZoneInfo? renderedIn)
    {
        if (!Preferences.ZoneFromBrowser)
        {
            _asking ??= AskAsync(js);
            var zone = await _asking;
            if (!Preferences.ZoneFromBrowser)
            {
                Preferences = Preferences with { TimeZone = zone, ZoneFromBrowser = true };
            }
        }
        return renderedIn != TimeZone;
    }

    private static async Task<TimeZoneInfo> AskAsync(IJSRuntime js)
    {
        try
        {
            return TimeText.Zone(await js.InvokeAsync<string?>("reviewerPortal.timeZone"));
        }
        catch (Exception e) when (e is JSException or JSDisconnectedException or InvalidOperationException or TaskCanceledException)
        {
            return TimeZoneInfo.Utc;
        }
    }
}
