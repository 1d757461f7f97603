using System.Net;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.ScaleOut;

/// <summary>PostgreSQL away: fail closed (503 naming it, nothing moves without its audit row), then recover by itself.</summary>
public sealed class PostgresOutageTests
{
    [SkippableFact]
    public async Task While_postgres_is_stopped_decisions_answer_503_and_change_nothing_and_after_it_nothing_acknowledged_is_lost()
    {
        await using var server = await OwnPostgresServer.StartAsync();
        Skip.If(server is null, TestServers.PostgresInstallHint);
        var pg = await server.CreateDatabaseAsync() + ";Timeout=3;Command Timeout=5";
        await using var app = await TestApp.StartAsync(postgres: pg);
        var agent = app.Agent("acme");
        var alice = app.Account("alice");
        var acknowledged = (await agent.SubmitPayment(1)).Str("approvalId");
        var pending = (await agent.SubmitPayment(2)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await alice.Approve(acknowledged)).StatusCode);

        await server.StopAsync();

        var approve = await alice.Approve(pending);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, approve.StatusCode);
        Assert.Equal("postgres", (await approve.Json()).Str("store"));
        var submit = await agent.Submit(new { topic = "finance.payment.execute", env = "production", payload = new { n = 3 } });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
        // Fail closed: nothing moved without its audit row.
        Assert.Equal("pending", (await (await agent.GetAsync($"/api/v1/approvals/{pending}")).Json()).Str("state"));

        await server.StartAgainAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpResponseMessage health;
        while ((health = await app.CreateClient().GetAsync("/healthz")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200); // the connection pool finds the server again by itself
        }
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await alice.Approve(pending)).StatusCode);
        Assert.Equal("approved", (await (await agent.GetAsync($"/api/v1/approvals/{acknowledged}")).Json()).Str("state"));
        Assert.Equal(1, await app.AuditCountAsync(acknowledged, "approved"));
        Assert.Equal(1, await app.AuditCountAsync(pending, "approved"));
        Assert.Equal(2, await app.AuditCountAsync(null, "submitted"));
        var verify = await (await app.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.GetRawText());
    }
}
