using System.Net;
using System.Net.Http.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>The whole app on a real 3-master Redis Cluster: nothing in it needs a single node.</summary>
public sealed class RedisClusterAppTests
{
    [SkippableFact]
    public async Task Submit_request_changes_resubmit_approve_and_dispatch_work_on_a_cluster()
    {
        var cluster = await TestServers.RedisClusterAsync();
        Skip.If(cluster is null, TestServers.RedisInstallHint);
        await using var app = await TestApp.StartAsync(redis: cluster);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { dispatch = new { kind = "redis", key = "workers" } })).StatusCode);
        var agent = app.Agent("acme");
        var id = (await agent.SubmitPayment(100, idempotencyKey: "cluster-1")).Str("approvalId");
        var globex = (await app.Agent("globex").SubmitPayment(5)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK,
            (await app.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "PO" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, po = "PO-1" } })).StatusCode);

        var approved = await app.Account("alice").Approve(id);

        Assert.Equal(HttpStatusCode.OK, approved.StatusCode);
        Assert.Equal("approved", (await (await agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=5")).Json()).Str("state"));
        Assert.Equal(HttpStatusCode.NotFound, (await app.Account("alice").GetAsync($"/api/v1/approvals/{globex}")).StatusCode);
        Assert.Equal("pending", (await (await app.Account("gina").GetAsync($"/api/v1/approvals/{globex}")).Json()).Str("state"));
        var verify = await (await app.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.GetRawText());
    }
}
