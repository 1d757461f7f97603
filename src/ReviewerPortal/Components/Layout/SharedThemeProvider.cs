#pragma warning disable BL0006 // reads the frames MudThemeProvider renders: all markup, kept as one shared string
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Components.Rendering;
using Microsoft.AspNetCore.Components.RenderTree;
using MudBlazor;

namespace ReviewerPortal.Components.Layout;

/// <summary>
/// MudBlazor's theme provider, whose <c>&lt;style&gt;</c> text (about 23 KB: every palette, shadow and typography
/// variable) every open tab shares: MudThemeProvider builds its own copy for each tab and the tab keeps it for as long
/// as it is open. It renders what MudThemeProvider renders, then swaps the text for the one equal copy kept here (one
/// per theme and colour scheme), so what it writes is MudThemeProvider's own (SharedThemeProviderTests compares them);
/// should a MudBlazor release render anything but markup here, it renders as MudBlazor does.
/// </summary>
public sealed class SharedThemeProvider : MudThemeProvider
{
    /// <summary>Light and dark of the portal's one theme, with or without the thin scrollbar: a handful at most.</summary>
    private const int MaxShared = 16;

    private static readonly ConcurrentDictionary<string, string> Shared = new(StringComparer.Ordinal);

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        using var own = new RenderTreeBuilder();
        base.BuildRenderTree(own);
        var frames = own.GetFrames();
        var rendered = frames.Array.Take(frames.Count).ToList();
        if (rendered.Any(f => f.FrameType != RenderTreeFrameType.Markup))
        {
            base.BuildRenderTree(builder);
            return;
        }
        var text = string.Concat(rendered.Select(f => f.MarkupContent));
        builder.AddMarkupContent(0, Shared.TryGetValue(text, out var shared) ? shared
            : Shared.Count < MaxShared ? Shared.GetOrAdd(text, text) : text);
    }
}
