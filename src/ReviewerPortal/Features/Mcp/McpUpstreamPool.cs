using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using ModelContextProtocol.Client;

namespace ReviewerPortal.Features.Mcp;

/// <summary>
/// One long-lived MCP client per upstream, connected on first use. HTTP upstreams go through the named HttpClient
/// <see cref="HttpClientName"/> (where the outbound guard attaches); a stdio upstream is one process, started again on
/// the next call after it died (or after any connection of either kind ended).
/// </summary>
public sealed class McpUpstreamPool(
    IOptions<McpGatewayOptions> options,
    IHttpClientFactory httpClients,
    ILoggerFactory loggerFactory,
    ILogger<McpUpstreamPool> logger) : IAsyncDisposable
{
    public const string HttpClientName = "mcp-upstream";

    private readonly ConcurrentDictionary<string, McpClient> _clients = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _connecting = new(1, 1);

    /// <summary>The connected client of <paramref name="upstream"/>; throws when it cannot be reached.</summary>
    public async Task<McpClient> GetAsync(string upstream, CancellationToken cancellationToken)
    {
        if (_clients.TryGetValue(upstream, out var existing) && !existing.Completion.IsCompleted)
        {
            return existing;
        }
        await _connecting.WaitAsync(cancellationToken);
        try
        {
            if (_clients.TryGetValue(upstream, out existing))
            {
                if (!existing.Completion.IsCompleted)
                {
                    return existing;
                }
                _clients.TryRemove(upstream, out _);
                await DisposeQuietlyAsync(existing);
            }
            var client = await ConnectAsync(upstream, cancellationToken);
            _clients[upstream] = client;
            _ = client.Completion.ContinueWith(done =>
            {
                logger.LogWarning(done.Result.Exception, "MCP upstream {Upstream} closed; it is connected (or started) again on the next call", upstream);
                _clients.TryRemove(new KeyValuePair<string, McpClient>(upstream, client));
            }, TaskScheduler.Default);
            return client;
        }
        finally
        {
            _connecting.Release();
        }
    }

    /// <summary>Forgets a client that failed a call, so the next call connects (or starts the process) again.</summary>
    public async Task ResetAsync(string upstream, McpClient failed)
    {
        _clients.TryRemove(new KeyValuePair<string, McpClient>(upstream, failed));
        await DisposeQuietlyAsync(failed);
    }

    private async Task<McpClient> ConnectAsync(string upstream, CancellationToken cancellationToken)
    {
        if (!options.Value.Upstreams.TryGetValue(upstream, out var entry))
        {
            throw new InvalidOperationException($"No MCP upstream '{upstream}'.");
        }
        IClientTransport transport = entry.Url is { Length: > 0 } url
            ? new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = new Uri(url),
                Name = upstream,
                TransportMode = HttpTransportMode.StreamableHttp,
                ConnectionTimeout = TimeSpan.FromSeconds(10),
            }, httpClients.CreateClient(HttpClientName), loggerFactory, ownsHttpClient: true)
            : new StdioClientTransport(new StdioClientTransportOptions
            {
                Command = entry.Command!,
                Arguments = entry.Arguments,
                Name = upstream,
            }, loggerFactory);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        return await McpClient.CreateAsync(transport, new McpClientOptions
        {
            ClientInfo = new() { Name = "reviewerportal-gateway", Version = "1.0" },
        }, loggerFactory, timeout.Token);
    }

    private async Task DisposeQuietlyAsync(McpClient client)
    {
        try
        {
            await client.DisposeAsync();
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Disposing an MCP upstream client failed");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values)
        {
            await DisposeQuietlyAsync(client);
        }
        _clients.Clear();
        _connecting.Dispose();
    }
}
