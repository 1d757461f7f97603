using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;

namespace ReviewerPortal.Tests.Features.Mcp;

/// <summary>
/// An upstream MCP server written with the same SDK, on Kestrel on a loopback port. Its tools record every call they
/// receive (<see cref="Calls"/>), so a test sees exactly what reached the upstream and how often.
/// </summary>
public sealed class TestUpstream : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestUpstream(WebApplication app) => _app = app;

    public ConcurrentQueue<(string Tool, string Arguments)> Calls { get; } = new();

    public string Url => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/mcp";

    public int CallsOf(string tool) => Calls.Count(c => c.Tool == tool);

    public static async Task<TestUpstream> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        TestUpstream? self = null;
        builder.Services.AddMcpServer()
            .WithHttpTransport(o => o.Stateless = true)
            .WithListToolsHandler((_, _) => ValueTask.FromResult(new ListToolsResult
            {
                Tools = [Tool("pay", "Pays an invoice."), Tool("read", "Reads a file."), Tool("wipe", "Deletes everything."), Tool("email", "Sends an e-mail.")],
            }))
            .WithCallToolHandler((request, _) =>
            {
                var arguments = JsonSerializer.Serialize(request.Params!.Arguments ?? new Dictionary<string, JsonElement>());
                self!.Calls.Enqueue((request.Params.Name, arguments));
                return ValueTask.FromResult(new CallToolResult
                {
                    Content = [new TextContentBlock { Text = $"{request.Params.Name} ran with {arguments}" }],
                });
            });
        var app = builder.Build();
        app.MapMcp("/mcp");
        self = new TestUpstream(app);
        await app.StartAsync();
        return self;
    }

    private static Tool Tool(string name, string description) => new()
    {
        Name = name,
        Description = description,
        InputSchema = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone(),
    };

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
