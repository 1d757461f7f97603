namespace ReviewerPortal.Components;

public static class PortalEndpoints
{
    /// <summary>
    /// The portal's pages, interactive over Blazor's WebSocket. Compression stays on (render batches shrink several
    /// times on a phone's link) without server context takeover: each batch is compressed on its own, so an open tab does
    /// not keep a deflate state of about 256 KB (zlib's window and hash tables) for as long as it is open, most of the
    /// app's native memory per tab. The first batches are the largest, and compress as well either way.
    /// </summary>
    public static void MapPortalComponents(this WebApplication app) =>
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode(options => options.ConfigureWebSocketAcceptContext = (_, accept) =>
        {
            accept.DangerousEnableCompression = true;
            accept.DisableServerContextTakeover = true;
            return Task.CompletedTask;
        });
}
