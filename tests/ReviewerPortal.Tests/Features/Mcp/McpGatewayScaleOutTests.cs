using System.Text;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Mcp;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Mcp;

/// <summary>Two app instances on one Redis: an approved MCP call retried on both at once still reaches the upstream once.</summary>
public sealed class McpGatewayScaleOutTests
{
    [Fact]
    public async Task An_approved_call_waited_on_by_two_instances_runs_the_tool_once_and_both_get_its_result()
    {
        await using var upstream = await TestUpstream.StartAsync();
        var redis = await TestServers.GarnetAsync();
        var prefix = $"m{Guid.NewGuid():N}:";
        var settings = new Dictionary<string, string?>
        {
            ["McpGateway:Upstreams:files:Url"] = upstream.Url,
            ["McpGateway:Upstreams:files:Tenants:0"] = "acme",
        };
        // One Redis and one database (with its Data Protection key ring), as a fleet shares them.
        var data = TestServers.NewTempDirectory("mcp-fleet");
        await using var a = await TestApp.StartAsync(redis: redis, keyPrefix: prefix, settings: settings, dataPath: data);
        await using var b = await TestApp.StartAsync(redis: redis, keyPrefix: prefix, settings: settings, dataPath: data);
        var published = await a.Account("ada").PutAsync("/api/v1/tenants/acme/policy",
            new StringContent(McpGatewayTests.Policy, Encoding.UTF8, "application/yaml"));
        Assert.True(published.IsSuccessStatusCode);
        var arguments = new Dictionary<string, object?> { ["invoice"] = "INV-2X", ["amount"] = 2 };

        await using var onA = await McpGatewayTests.ConnectAsync(a, "files");
        await using var onB = await McpGatewayTests.ConnectAsync(b, "files");
        var callOnA = McpGatewayTests.Call(onA, "pay", arguments, "pay-INV-2X");
        var approval = await McpGatewayTests.PendingAsync(a, "pay-INV-2X");
        var callOnB = McpGatewayTests.Call(onB, "pay", arguments, "pay-INV-2X");
        Assert.Equal(approval.Str("id"), (await McpGatewayTests.PendingAsync(b, "pay-INV-2X")).Str("id"));
        await b.Account("alice").Approve(approval.Str("id"));
        var results = await Task.WhenAll(callOnA, callOnB).WaitAsync(TimeSpan.FromMinutes(2)); // bounded: a lost wake-up fails, not hangs

        Assert.Equal(1, upstream.CallsOf("pay"));
        Assert.All(results, r => Assert.NotEqual(true, r.IsError));
        Assert.Equal(McpGatewayTests.Text(results[0]), McpGatewayTests.Text(results[1]));
    }

    [Theory]
    [InlineData("McpGateway:Upstreams:files:Tenants:0", "acme", "McpGateway:Upstreams:files: set exactly one of Url")]
    [InlineData("McpGateway:Upstreams:files:Url", "ftp://example.com/mcp", "McpGateway:Upstreams:files:Url")]
    [InlineData("McpGateway:Upstreams:files:Url", "http://127.0.0.1:1/mcp", "McpGateway:Upstreams:files:Tenants")]
    public async Task A_bad_upstream_entry_fails_at_start_naming_its_key(string key, string value, string named)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(settings: new Dictionary<string, string?> { [key] = value }));

        var validation = error as OptionsValidationException ?? Assert.IsType<OptionsValidationException>(error.GetBaseException());
        Assert.Contains(validation.Failures, f => f.Contains(named, StringComparison.Ordinal));
        Assert.Equal(typeof(McpGatewayOptions), validation.OptionsType);
    }
}
