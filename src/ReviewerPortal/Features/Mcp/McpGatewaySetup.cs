using ReviewerPortal.Infrastructure.Outbound;
using System.Security.Claims;
using Microsoft.Extensions.Options;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Protocol;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Http;

namespace ReviewerPortal.Features.Mcp;

/// <summary>The MCP gateway: <c>builder.AddMcpGateway()</c> and <c>app.MapMcpGateway()</c>.</summary>
public static class McpGatewaySetup
{
    public const string Pattern = "/mcp/{upstream}";

    public static IHostApplicationBuilder AddMcpGateway(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<McpGatewayOptions>().BindConfiguration(McpGatewayOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<McpGatewayOptions>, McpGatewayOptionsValidator>();
        services.AddSingleton<McpUpstreamPool>();
        services.AddSingleton<McpGateway>();
        // Upstream calls go through this named client, so the outbound (SSRF) guard attaches here; no redirects followed.
        // Upstream URLs pass the same outbound guard as webhooks (Outbound:AllowedHosts opens a local upstream).
        services.AddOutbound();
        services.AddOutboundHttpClient(McpUpstreamPool.HttpClientName)
            .ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddMcpServer().WithHttpTransport(o =>
        {
            // Sessions: a retried call is recognised by its JSON-RPC id within the session.
            o.SessionMode = HttpServerSessionMode.Stateful;
            o.ConfigureSessionOptions = ConfigureSession;
        });
        return builder;
    }

    public static IEndpointRouteBuilder MapMcpGateway(this IEndpointRouteBuilder routes)
    {
        routes.MapMcp(Pattern)
            .RequireAuthorization(AuthSetup.AgentPolicy)
            .WithTags("MCP")
            .Add(Guard);
        return routes;
    }

    /// <summary>Each session serves the upstream named in its route.</summary>
    private static Task ConfigureSession(HttpContext context, ModelContextProtocol.Server.McpServerOptions server, CancellationToken cancellationToken)
    {
        var upstream = (string)context.GetRouteValue("upstream")!;
        var gateway = context.RequestServices.GetRequiredService<McpGateway>();
        server.ServerInfo = new Implementation { Name = "reviewerportal/" + upstream, Version = "1.0" };
        server.Capabilities ??= new ServerCapabilities();
        server.Capabilities.Tools ??= new ToolsCapability();
        server.Handlers.ListToolsHandler = (request, ct) => gateway.ListToolsAsync(upstream, request, ct);
        server.Handlers.CallToolHandler = (request, ct) => gateway.CallToolAsync(upstream, request, ct);
        return Task.CompletedTask;
    }

    /// <summary>An upstream the caller's tenant may not use answers 404, exactly like one that does not exist.</summary>
    private static void Guard(EndpointBuilder endpoint)
    {
        var next = endpoint.RequestDelegate!;
        endpoint.RequestDelegate = async context =>
        {
            var gateway = context.RequestServices.GetRequiredService<McpGateway>();
            if (!gateway.MayUse(context.User, context.GetRouteValue("upstream") as string, out _))
            {
                await Problems.NotFound("upstream").ExecuteAsync(context);
                return;
            }
            // MCP sessions are bound to a user id: the agent key that opened it (no other key can resume the session).
            if (context.User.Identity is ClaimsIdentity identity && identity.FindFirst(ClaimTypes.NameIdentifier) is null)
            {
                identity.AddClaim(new Claim(ClaimTypes.NameIdentifier,
                    $"agent:{identity.FindFirst(ClaimNames.Tenant)?.Value}:{identity.FindFirst(ClaimNames.KeyHash)?.Value}"));
            }
            await next(context);
        };
    }
}
