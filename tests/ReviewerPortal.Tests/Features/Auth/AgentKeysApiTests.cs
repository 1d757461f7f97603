using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.SignalR.Client;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>Agent keys as an API (automation, GitOps): what the admin page does, audited, revoked everywhere at once.</summary>
public sealed class AgentKeysApiTests
{
    private static object Job => new { topic = "knowledge.read", env = "production", payload = new { q = 1 } };

    [Fact]
    public async Task An_admin_creates_lists_and_revokes_a_key_and_a_revoked_key_stops_at_once_on_every_instance()
    {
        var data = TestServers.NewTempDirectory("keys");
        var prefix = $"k{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix);
        await using var b = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix); // one database, one Redis
        var ada = a.Account("ada");

        var created = await ada.PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = "deploy bot" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var body = await created.Json();
        var (id, key) = (body.GetProperty("id").GetInt32(), body.Str("key"));
        Assert.Equal("deploy bot", body.Str("name"));
        Assert.Equal($"/api/v1/tenants/acme/agent-keys/{id}", created.Headers.Location?.ToString());

        // The key works on both instances (and is cached by both).
        Assert.Equal(HttpStatusCode.OK, (await a.WithToken(key).Submit(Job)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await b.WithToken(key).Submit(Job)).StatusCode);
        var listed = await (await b.Account("ada").GetAsync("/api/v1/tenants/acme/agent-keys")).Json();
        var item = Assert.Single(listed.GetProperty("items").EnumerateArray(), k => k.GetProperty("id").GetInt32() == id);
        Assert.False(item.TryGetProperty("key", out _), "the secret is shown once, at creation");

        Assert.Equal(HttpStatusCode.NoContent, (await ada.DeleteAsync($"/api/v1/tenants/acme/agent-keys/{id}")).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await a.WithToken(key).Submit(Job)).StatusCode);
        HttpStatusCode onB = default;
        for (var i = 0; i < 50 && onB != HttpStatusCode.Unauthorized; i++)
        {
            onB = (await b.WithToken(key).Submit(Job)).StatusCode; // the revocation reaches B over Redis within ms
            if (onB != HttpStatusCode.Unauthorized)
            {
                await Task.Delay(20);
            }
        }
        Assert.Equal(HttpStatusCode.Unauthorized, onB);
        Assert.Equal(1, await a.AuditCountAsync(null, "agent_key_created"));
        Assert.Equal(1, await a.AuditCountAsync(null, "agent_key_revoked"));
        Assert.Equal(HttpStatusCode.NotFound, (await ada.DeleteAsync($"/api/v1/tenants/globex/agent-keys/{id}")).StatusCode);
    }

    [Fact]
    public async Task A_hub_connection_opened_with_a_key_is_closed_on_every_instance_when_the_key_is_revoked()
    {
        var data = TestServers.NewTempDirectory("keys-hub");
        var prefix = $"kh{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix, kestrel: true);
        await using var b = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix, kestrel: true);
        var created = await (await a.Account("ada").PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = "hub bot" })).Json();
        var key = created.Str("key");
        await using var hub = new Microsoft.AspNetCore.SignalR.Client.HubConnectionBuilder()
            .WithUrl(new Uri(new Uri(b.BaseUrl), "hubs/approvals"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(key))
            .Build();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Closed += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };
        await hub.StartAsync();
        Assert.Equal(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected, hub.State);

        Assert.Equal(HttpStatusCode.NoContent,
            (await a.Account("ada").DeleteAsync($"/api/v1/tenants/acme/agent-keys/{created.GetProperty("id").GetInt32()}")).StatusCode);

        // Revoked on A, the connection held on B ends within seconds (it would otherwise keep receiving the tenant's events).
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Disconnected, hub.State);
    }

    [Fact]
    public async Task Only_admins_manage_keys_and_bad_input_names_the_field()
    {
        await using var app = await TestApp.StartAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await app.Account("alice").GetAsync("/api/v1/tenants/acme/agent-keys")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden,
            (await app.Agent("acme").PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = "x" })).StatusCode);
        var empty = await app.Account("ada").PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = " " });
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.True((await empty.Json()).GetProperty("errors").TryGetProperty("name", out _));
        Assert.Equal(HttpStatusCode.NotFound,
            (await app.Account("ada").PostAsJsonAsync("/api/v1/tenants/nosuch/agent-keys", new { name = "x" })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.Account("ada").DeleteAsync("/api/v1/tenants/acme/agent-keys/999999")).StatusCode);
        Assert.Equal(0, await app.AuditCountAsync(null, "agent_key_created"));
    }
}
