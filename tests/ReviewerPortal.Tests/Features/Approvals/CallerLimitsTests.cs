using System.Net;
using Microsoft.AspNetCore.SignalR.Client;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>One key cannot hold an instance's waits and hub connections to itself (security pass item 8).</summary>
public sealed class CallerLimitsTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(kestrel: true, settings: new Dictionary<string, string?>
    {
        ["Approvals:MaxWaitsPerCaller"] = "2",
        ["Approvals:MaxHubConnectionsPerCaller"] = "2",
    });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Past_its_open_waits_a_key_gets_429_with_retry_after_and_a_wait_again_once_one_ends()
    {
        var agent = _app.Agent("acme");
        var id = (await agent.SubmitPayment(1)).Str("approvalId");
        var waits = Enumerable.Range(0, 2).Select(_ => agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30")).ToList();
        await Task.Delay(500); // both are parked on the server

        var third = await agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");

        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("1", third.Headers.RetryAfter?.ToString());
        Assert.Equal("too_many_waits", (await third.Json()).Str("code"));
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(id)).StatusCode);
        foreach (var wait in waits)
        {
            Assert.Equal(HttpStatusCode.OK, (await wait).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=1")).StatusCode);
    }

    [Fact]
    public async Task Past_its_hub_connections_a_keys_new_connection_is_closed_and_the_others_stay()
    {
        var connections = new List<HubConnection>();
        var closed = new List<TaskCompletionSource>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var hub = new HubConnectionBuilder()
                    .WithUrl(new Uri(new Uri(_app.BaseUrl), "hubs/approvals"), o => o.AccessTokenProvider = () => Task.FromResult<string?>("demo-acme-agent"))
                    .Build();
                var ended = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                hub.Closed += _ =>
                {
                    ended.TrySetResult();
                    return Task.CompletedTask;
                };
                await hub.StartAsync();
                connections.Add(hub);
                closed.Add(ended);
            }

            await closed[2].Task.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(HubConnectionState.Connected, connections[0].State);
            Assert.Equal(HubConnectionState.Connected, connections[1].State);
        }
        finally
        {
            foreach (var hub in connections)
            {
                await hub.DisposeAsync();
            }
        }
    }
}
