#pragma warning disable BL0006 // the test reads the render tree to see which string each open tab holds
using System.Reflection;
using Bunit;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.RenderTree;
using MudBlazor;
using MudBlazor.Services;
using ReviewerPortal.Components.Layout;

namespace ReviewerPortal.Tests.Components;

public sealed class SharedThemeProviderTests : BunitContext
{
    public SharedThemeProviderTests()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void It_writes_what_MudBlazors_theme_provider_writes_for_the_portal_theme(bool dark)
    {
        var mud = Render<MudThemeProvider>(p => p.Add(c => c.Theme, PortalTheme.Theme).Add(c => c.IsDarkMode, dark));
        var shared = Render<SharedThemeProvider>(p => p.Add(c => c.Theme, PortalTheme.Theme).Add(c => c.IsDarkMode, dark));

        Assert.Contains("mud-theme-provider", shared.Markup, StringComparison.Ordinal);
        Assert.Equal(mud.Markup, shared.Markup);
    }

    [Fact]
    public void Every_open_tab_holds_the_same_theme_text_not_a_copy_of_its_own()
    {
        // Each tab's theme <style> is ~23 KB of text: built once per theme and colour scheme, shared by every circuit.
        var first = Render<SharedThemeProvider>(p => p.Add(c => c.Theme, PortalTheme.Theme).Add(c => c.IsDarkMode, true));
        var second = Render<SharedThemeProvider>(p => p.Add(c => c.Theme, PortalTheme.Theme).Add(c => c.IsDarkMode, true));

        var a = ThemeText(first.ComponentId);
        var b = ThemeText(second.ComponentId);
        Assert.True(a.Length > 5000, $"theme text of {a.Length} chars");
        Assert.Same(a, b);

        first.Render(p => p.Add(c => c.IsDarkMode, false));
        Assert.NotSame(a, ThemeText(first.ComponentId));
        Assert.Contains("mud-theme-provider", ThemeText(first.ComponentId), StringComparison.Ordinal);
    }

    private string ThemeText(int componentId)
    {
        var frames = (ArrayRange<RenderTreeFrame>)typeof(Renderer)
            .GetMethod("GetCurrentRenderTreeFrames", BindingFlags.NonPublic | BindingFlags.Instance)!
            .Invoke(Renderer, [componentId])!;
        return frames.Array.Take(frames.Count).Where(f => f.FrameType == RenderTreeFrameType.Markup)
            .Select(f => f.MarkupContent).Single(m => m.Contains("mud-theme-provider", StringComparison.Ordinal));
    }
}
