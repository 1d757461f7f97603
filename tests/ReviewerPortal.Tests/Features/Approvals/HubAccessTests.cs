using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>A live hub connection never outlives the access that opened it (security pass item 4).</summary>
public sealed class HubAccessTests
{
    [Fact]
    public async Task A_reviewer_removed_from_the_approvers_stops_receiving_the_tenants_events_on_every_instance_within_seconds()
    {
        var data = TestServers.NewTempDirectory("hub-access");
        var prefix = $"ha{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix, kestrel: true);
        await using var b = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix, kestrel: true);
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var hub = Connect(b, "demo-bob-token", seen);
        await hub.StartAsync();

        var first = await a.Agent("acme").SubmitPayment(101);
        await Until(() => seen.Contains(first.Str("approvalId")), "bob, an approver of acme, sees its events");

        // ada takes bob off acme's approvers on instance A; bob's connection is held by instance B.
        var removed = await a.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvers = new[] { "alice" } });
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        var connections = b.Services.GetRequiredService<HubConnections>();
        await Until(() => !connections.JoinedTenants().Any(t => t.Tenant == "acme" && t.Holder.Contains("bob", StringComparison.Ordinal)),
            "within 5 s bob's connection on B leaves acme's group", TimeSpan.FromSeconds(5));

        var second = await a.Agent("acme").SubmitPayment(102);
        var third = await b.Agent("acme").SubmitPayment(103);
        await Task.Delay(1000);
        Assert.DoesNotContain(second.Str("approvalId"), seen);
        Assert.DoesNotContain(third.Str("approvalId"), seen);
        Assert.Equal(HubConnectionState.Connected, hub.State); // bob still reviews other tenants: the connection stays

        // Put back, bob reads acme again without reconnecting.
        Assert.Equal(HttpStatusCode.OK,
            (await a.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvers = new[] { "alice", "bob" } })).StatusCode);
        await Until(() => connections.JoinedTenants().Any(t => t.Tenant == "acme" && t.Holder.Contains("bob", StringComparison.Ordinal)),
            "bob's connection joins acme again", TimeSpan.FromSeconds(5));
        var fourth = await a.Agent("acme").SubmitPayment(104);
        await Until(() => seen.Contains(fourth.Str("approvalId")), "bob sees acme's events again");
    }

    [Fact]
    public async Task The_hub_offers_no_long_polling_and_a_connection_token_is_useless_with_another_tenants_credentials()
    {
        await using var app = await TestApp.StartAsync(kestrel: true);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

        // acme's agent negotiates; globex's agent tries to ride on that connection token.
        using var negotiate = new HttpRequestMessage(HttpMethod.Post, "hubs/approvals/negotiate?negotiateVersion=1");
        negotiate.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "demo-acme-agent");
        var negotiated = await http.SendAsync(negotiate);
        Assert.Equal(HttpStatusCode.OK, negotiated.StatusCode);
        var body = await negotiated.Json();
        var transports = body.GetProperty("availableTransports").EnumerateArray().Select(t => t.Str("transport")).ToList();
        Assert.DoesNotContain("LongPolling", transports);
        Assert.Contains("WebSockets", transports);
        var token = body.Str("connectionToken");

        using var poll = new HttpRequestMessage(HttpMethod.Get, $"hubs/approvals?id={token}");
        poll.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "demo-globex-agent");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var ridden = await http.SendAsync(poll, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.NotEqual(HttpStatusCode.OK, ridden.StatusCode);
        using var stream = new HttpRequestMessage(HttpMethod.Get, $"hubs/approvals?id={token}");
        stream.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "demo-globex-agent");
        stream.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        var streamed = await http.SendAsync(stream, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.NotEqual(HttpStatusCode.OK, streamed.StatusCode);

        // The .NET client forced onto long polling cannot connect at all.
        await using var longPolling = new HubConnectionBuilder()
            .WithUrl(new Uri(new Uri(app.BaseUrl), "hubs/approvals"), HttpTransportType.LongPolling,
                o => o.AccessTokenProvider = () => Task.FromResult<string?>("demo-acme-agent"))
            .Build();
        await Assert.ThrowsAnyAsync<Exception>(() => longPolling.StartAsync());
    }

    [Fact]
    public async Task One_key_cannot_pile_up_hub_negotiations()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Approvals:MaxHubNegotiationsPerMinute"] = "5" });
        var agent = app.Agent("acme");
        var answers = new List<HttpResponseMessage>();
        for (var i = 0; i < 8; i++)
        {
            answers.Add(await agent.PostAsync("/hubs/approvals/negotiate?negotiateVersion=1", null));
        }
        Assert.All(answers.Take(5), r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        var refused = answers[^1];
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.Equal("too_many_hub_negotiations", (await refused.Json()).Str("code"));
        // Another tenant's key is not held back by acme's.
        Assert.Equal(HttpStatusCode.OK, (await app.Agent("globex").PostAsync("/hubs/approvals/negotiate?negotiateVersion=1", null)).StatusCode);
    }

    [Fact]
    public async Task The_hub_refuses_anonymous_callers_and_never_delivers_another_tenants_events()
    {
        await using var app = await TestApp.StartAsync(kestrel: true);
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("hubs/approvals/negotiate?negotiateVersion=1", null)).StatusCode);
        await using var anonymous = new HubConnectionBuilder().WithUrl(new Uri(new Uri(app.BaseUrl), "hubs/approvals")).Build();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => anonymous.StartAsync());

        var acmeSeen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var globexSeen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ginaSeen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var acme = Connect(app, "demo-acme-agent", acmeSeen);
        await using var globex = Connect(app, "demo-globex-agent", globexSeen);
        await using var gina = Connect(app, "demo-gina-token", ginaSeen);
        await Task.WhenAll(acme.StartAsync(), globex.StartAsync(), gina.StartAsync());

        var acmeApproval = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        var globexApproval = (await app.Agent("globex").SubmitPayment(8)).Str("approvalId");
        await Until(() => acmeSeen.Contains(acmeApproval) && globexSeen.Contains(globexApproval) && ginaSeen.Contains(globexApproval),
            "each tenant's callers see its events");
        await app.Account("alice").Approve(acmeApproval);
        await Until(() => acmeSeen.Count(id => id == acmeApproval) >= 2, "acme's agent sees the approval");
        await Task.Delay(300);
        Assert.DoesNotContain(acmeApproval, globexSeen);
        Assert.DoesNotContain(acmeApproval, ginaSeen);
        Assert.DoesNotContain(globexApproval, acmeSeen);
    }

    private static HubConnection Connect(TestApp app, string token, System.Collections.Concurrent.ConcurrentQueue<string> seen)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(new Uri(app.BaseUrl), "hubs/approvals"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .Build();
        hub.On<JsonElement>(AgentHub.ChangedMethod, change => seen.Enqueue(change.Str("approvalId")));
        return hub;
    }

    private static async Task Until(Func<bool> condition, string what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, what);
            await Task.Delay(25);
        }
    }
}
