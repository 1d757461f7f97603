using System.Security.Claims;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using MudBlazor;
using ReviewerPortal.Features.Reading;

namespace ReviewerPortal.Components.Layout;

/// <summary>
/// The theme: the reader's choice (light, dark, or the device's setting) as the page request found it, so the
/// server-rendered page is already in the right colours; while it follows the device, changes there apply live.
/// </summary>
public partial class MainLayout
{
    private SharedThemeProvider? _themeProvider;
    private bool _watching;
    private ClaimsPrincipal? _user;

    /// <summary>Who is signed in (the bar's destinations and name); re-read whenever the authentication state changes.</summary>
    [CascadingParameter]
    private Task<AuthenticationState>? AuthenticationState { get; set; }

    protected override async Task OnParametersSetAsync() =>
        _user = AuthenticationState is null ? null : (await AuthenticationState).User;

    [Inject]
    private ReaderContext Reader { get; set; } = default!;

    private bool FollowSystem => Reader.Preferences.Theme == ThemeChoice.System;

    private bool Dark
    {
        get => Reader.Preferences.IsDark;
        set
        {
            if (FollowSystem)
            {
                Reader.SystemDarkIs(value);
            }
        }
    }

    protected override async Task OnAfterRenderAsync(bool firstRender)
    {
        if (firstRender && FollowSystem)
        {
            await FollowSystemAsync();
        }
    }

    private async Task FollowSystemAsync()
    {
        if (_themeProvider is null)
        {
            return;
        }
        var dark = await _themeProvider.GetSystemDarkModeAsync();
        if (dark != Reader.Preferences.SystemDark)
        {
            Reader.SystemDarkIs(dark);
            StateHasChanged();
        }
        if (!_watching)
        {
            _watching = true;
            await _themeProvider.WatchSystemDarkModeAsync(SystemDarkModeChangedAsync);
        }
    }

    private Task SystemDarkModeChangedAsync(bool dark)
    {
        Reader.SystemDarkIs(dark);
        return InvokeAsync(StateHasChanged);
    }

    private async Task ThemeChosenAsync(ThemeChoice theme)
    {
        Reader.ChooseTheme(theme);
        if (theme == ThemeChoice.System)
        {
            await FollowSystemAsync();
        }
        StateHasChanged();
    }
}
