using System.Net;
using System.Text.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Observability;

/// <summary>
/// <c>GET /diagnostics/runtime</c>: the process's allocation and GC figures for the load harness. Off by default
/// (<c>Diagnostics:Enabled</c>); when on, it answers loopback callers only.
/// </summary>
public sealed class RuntimeDiagnosticsTests
{
    private static HttpRequestMessage Get(string from)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/diagnostics/runtime");
        request.Headers.Add(ClientAddresses.Header, from);
        return request;
    }

    [Fact]
    public async Task Off_by_default_it_does_not_exist_even_for_loopback()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add);

        var response = await app.CreateClient().SendAsync(Get("127.0.0.1"));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task When_enabled_it_answers_loopback_with_allocations_gc_counts_and_working_set_and_nobody_else()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add,
            settings: new Dictionary<string, string?> { ["Diagnostics:Enabled"] = "true" });
        var client = app.CreateClient();

        var first = await client.SendAsync(Get("127.0.0.1"));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var before = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement;
        _ = await app.Agent("acme").SubmitPayment(1); // allocates
        var after = JsonDocument.Parse(await (await client.SendAsync(Get("::1"))).Content.ReadAsStringAsync()).RootElement;

        Assert.True(after.GetProperty("allocatedBytes").GetInt64() > before.GetProperty("allocatedBytes").GetInt64());
        Assert.True(after.GetProperty("gen0Collections").GetInt32() >= after.GetProperty("gen1Collections").GetInt32());
        Assert.True(after.GetProperty("gen1Collections").GetInt32() >= after.GetProperty("gen2Collections").GetInt32());
        Assert.True(after.GetProperty("workingSetBytes").GetInt64() > 0);
        Assert.True(after.GetProperty("heapSizeBytes").GetInt64() > 0);
        Assert.Equal(Environment.ProcessId, after.GetProperty("processId").GetInt32());

        foreach (var stranger in new[] { "203.0.113.9", "10.0.0.5" })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(Get(stranger))).StatusCode);
        }
        var withToken = Get("203.0.113.9");
        withToken.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "demo-ada-token");
        Assert.Equal(HttpStatusCode.NotFound, (await client.SendAsync(withToken)).StatusCode); // not even the admin from afar
    }
}
