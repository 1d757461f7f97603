using System.Text;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Mcp;

/// <summary>An upstream MCP server's address passes the outbound guard like a webhook's: loopback only when allowed.</summary>
public sealed class McpUpstreamGuardTests
{
    [Fact]
    public async Task An_upstream_on_a_loopback_address_not_allowed_is_never_called()
    {
        await using var upstream = await TestUpstream.StartAsync();
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["McpGateway:Upstreams:files:Url"] = upstream.Url,
            ["McpGateway:Upstreams:files:Tenants:0"] = "acme",
            ["Outbound:AllowedHosts:0"] = "", // the test default allows 127.0.0.1; a real deployment does not
        });
        var published = await app.Account("ada").PutAsync("/api/v1/tenants/acme/policy",
            new StringContent(McpGatewayTests.Policy, Encoding.UTF8, "application/yaml"));
        Assert.True(published.IsSuccessStatusCode);

        await using var client = await McpGatewayTests.ConnectAsync(app, "files");
        var result = await client.CallToolAsync("read", new Dictionary<string, object?> { ["path"] = "a.txt" });

        Assert.True(result.IsError);
        Assert.Empty(upstream.Calls);
    }
}
