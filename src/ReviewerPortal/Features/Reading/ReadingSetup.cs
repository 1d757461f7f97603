namespace ReviewerPortal.Features.Reading;

public static class ReadingSetup
{
    /// <summary>Local times, relative times that stay current, and the theme each reviewer chose.</summary>
    public static IHostApplicationBuilder AddReading(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<ReaderContext>();
        builder.Services.AddScoped<RelativeTimeTicker>();
        builder.Services.AddSingleton<ThemeStore>();
        return builder;
    }

    /// <summary>What the reviewer's browser and account say, read once per page request (the app root does).</summary>
    public static async Task<ReaderPreferences> ReadAsync(HttpContext http)
    {
        var preferences = ReaderPreferences.FromCookies(http.Request);
        var chosen = await http.RequestServices.GetRequiredService<ThemeStore>().ReadAsync(http.User);
        return chosen is { } theme ? preferences with { Theme = theme } : preferences;
    }
}
