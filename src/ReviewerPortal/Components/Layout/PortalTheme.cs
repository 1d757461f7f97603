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
            Secondary = "#00796b",
            AppbarBackground = "#283593",
            Info = "#1565c0",
            Success = "#2e7d32",
            Warning = "#8a5300",
            Error = "#c62828",
        },
    };
}
