using Microsoft.AspNetCore.Components;
using MudBlazor;

namespace ReviewerPortal.Components.Layout;

public static class PortalTheme
{
    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight
        {
            // Every colour that carries white text (filled buttons and chips) or is used as text meets WCAG AA 4.5:1.
            Primary = "#3949ab",
            // Secondary text sits on white and on the portal's subtle grey (#f5f6fa): MudBlazor's default (54 % black)
            // gives 4.45:1 on the grey; this is 5.9:1 there.
            TextSecondary = "#5c5f66",
            Secondary = "#00796b",
            AppbarBackground = "#283593",
            Info = "#1565c0",
            Success = "#2e7d32",
            Warning = "#8a5300",
            Error = "#c62828",
        },
        // Dark: every text and control colour at least 4.5:1 on the background and the surface (WCAG AA), filled
        // buttons and chips with dark text on the light tones.
        PaletteDark = new PaletteDark
        {
            Background = "#16181d",
            Surface = "#1f222a",
            DrawerBackground = "#1f222a",
            DrawerText = "#e6e8ef",
            AppbarBackground = "#1a2040",
            AppbarText = "#ffffff",
            TextPrimary = "#e6e8ef",
            TextSecondary = "#aeb4c2",
            ActionDefault = "#aeb4c2",
            Primary = "#9fa8da",
            PrimaryContrastText = "#16181d",
            Secondary = "#80cbc4",
            SecondaryContrastText = "#0d1f1d",
            Info = "#90caf9",
            InfoContrastText = "#0a1a2a",
            Success = "#81c784",
            SuccessContrastText = "#0d1f0e",
            Warning = "#ffb74d",
            WarningContrastText = "#1f1300",
            Error = "#ef9a9a",
            ErrorContrastText = "#1f0a0a",
            LinesDefault = "rgba(255,255,255,0.16)",
            LinesInputs = "rgba(255,255,255,0.42)",
            TableLines = "rgba(255,255,255,0.12)",
            Divider = "rgba(255,255,255,0.12)",
        },
    };

    /// <summary>
    /// The portal's own colours beside MudBlazor's palette (diff and JSON highlighting, status text), as CSS variables
    /// per theme; the CSS files use these and the --mud-palette-* variables, never a fixed colour, so both themes read.
    /// Text colours are at least 4.5:1 on the surface and on their own backgrounds.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> LightColors = new Dictionary<string, string>
    {
        ["--rp-success-text"] = "#1b5e20",
        ["--rp-success-bg"] = "#e6f4ea",
        ["--rp-error-text"] = "#b71c1c",
        ["--rp-error-bg"] = "#fdecea",
        ["--rp-warning-text"] = "#8a4f00",
        ["--rp-warning-bg"] = "#fff3e0",
        ["--rp-amber"] = "#8a4f00",
        ["--rp-red"] = "#b71c1c",
        ["--rp-key-text"] = "#1a237e",
        ["--rp-code-bg"] = "rgba(0, 0, 0, 0.05)",
        ["--rp-selected-bg"] = "#e8eaf6",
        ["--rp-subtle-bg"] = "#f5f6fa",
    };

    public static readonly IReadOnlyDictionary<string, string> DarkColors = new Dictionary<string, string>
    {
        ["--rp-success-text"] = "#a5d6a7",
        ["--rp-success-bg"] = "#1e3322",
        ["--rp-error-text"] = "#f4b4b4",
        ["--rp-error-bg"] = "#3a2022",
        ["--rp-warning-text"] = "#ffcc80",
        ["--rp-warning-bg"] = "#3a2e1a",
        ["--rp-amber"] = "#ffcc80",
        ["--rp-red"] = "#f4b4b4",
        ["--rp-key-text"] = "#c5cae9",
        ["--rp-code-bg"] = "rgba(255, 255, 255, 0.08)",
        ["--rp-selected-bg"] = "#2b3150",
        ["--rp-subtle-bg"] = "#262a33",
    };

    /// <summary>
    /// The <c>&lt;style&gt;</c> that sets these variables (and the browser's colour scheme) for a theme: markup the
    /// layout renders itself, one text per theme, not a component of its own in every open tab.
    /// </summary>
    public static RenderFragment ColorsStyle(bool dark) => builder =>
    {
        builder.OpenElement(0, "style");
        builder.AddMarkupContent(1, dark ? DarkCss : LightCss);
        builder.CloseElement();
    };

    private static readonly string LightCss = Css(LightColors, "light");
    private static readonly string DarkCss = Css(DarkColors, "dark");

    private static string Css(IReadOnlyDictionary<string, string> colors, string scheme) =>
        $":root {{ color-scheme: {scheme}; {string.Concat(colors.Select(c => $"{c.Key}: {c.Value}; "))}}}";
}
