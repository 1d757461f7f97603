using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>The portal's WebSocket, as a browser negotiates it.</summary>
public sealed class PortalWebSocketTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(kestrel: true);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Batches_are_compressed_each_on_its_own_so_an_open_tab_keeps_no_deflate_state()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_app.BaseUrl) };
        var negotiated = await http.PostAsync("/_blazor/negotiate?negotiateVersion=1", null);
        negotiated.EnsureSuccessStatusCode();
        var token = (await negotiated.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("connectionToken").GetString();

        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.DangerousDeflateOptions = new WebSocketDeflateOptions();
        var ws = new UriBuilder(_app.BaseUrl) { Scheme = "ws", Path = "/_blazor", Query = $"id={token}" }.Uri;
        await socket.ConnectAsync(ws, CancellationToken.None);

        var extensions = string.Join(",", socket.HttpResponseHeaders!["Sec-WebSocket-Extensions"]);
        Assert.Contains("permessage-deflate", extensions, StringComparison.Ordinal);
        Assert.Contains("server_no_context_takeover", extensions, StringComparison.Ordinal);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
    }
}
