using MudBlazor;

namespace ReviewerPortal.Components.Layout;

public static class PortalTheme
{
    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = "#3949ab",
            Secondary = "#00897b",
            AppbarBackground = "#283593",
            Warning = "#b26a00",
            Error = "#c62828",
        },
    };
}
