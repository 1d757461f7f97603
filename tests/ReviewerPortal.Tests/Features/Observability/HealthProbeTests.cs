using System.Net;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Observability;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Observability;

/// <summary>
/// <c>/healthz/live</c> answers while the process runs; <c>/healthz/ready</c> answers 503 naming what is wrong (Redis,
/// the database, the timer service, the audit outbox) and comes back by itself; <c>/healthz</c> answers as before.
/// </summary>
public sealed class HealthProbeTests
{
    private static async Task<HttpResponseMessage> ReadyWhenAsync(HttpClient http, HttpStatusCode wanted)
    {
        HttpResponseMessage response = null!;
        for (var i = 0; i < 100; i++)
        {
            response = await http.GetAsync(ObservabilitySetup.ReadyPath);
            if (response.StatusCode == wanted)
            {
                break;
            }
            await Task.Delay(100); // the multiplexer reconnects in the background (not an app timer)
        }
        return response;
    }

    [SkippableFact]
    public async Task Ready_is_503_naming_redis_while_redis_server_is_stopped_and_recovers_by_itself_while_live_stays_200()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        var server = await RedisServerProcess.StartAsync();
        var port = server.Port;
        await using var app = await TestApp.StartAsync(redis: server.Endpoint + ",connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000");
        var http = app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(ObservabilitySetup.ReadyPath)).StatusCode);

        await server.DisposeAsync(); // redis-server stops
        var down = await http.GetAsync(ObservabilitySetup.ReadyPath);
        var live = await http.GetAsync(ObservabilitySetup.LivePath);
        var legacy = await http.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        var report = await down.Json();
        Assert.Equal("unhealthy", report.Str("status"));
        Assert.Equal("unhealthy", report.GetProperty("checks").GetProperty("redis").Str("status"));
        Assert.Equal("healthy", report.GetProperty("checks").GetProperty("database").Str("status"));
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, legacy.StatusCode); // /healthz as today
        Assert.Equal("down", (await legacy.Json()).Str("redis"));

        await using var back = await RedisServerProcess.StartAsync(port); // an empty server on the same port
        var ready = await ReadyWhenAsync(http, HttpStatusCode.OK);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("healthy", (await ready.Json()).GetProperty("checks").GetProperty("redis").Str("status"));
    }

    [Fact]
    public async Task Ready_is_503_naming_the_database_while_its_commands_fail_and_recovers_by_itself()
    {
        var failing = new FailingCommands();
        await using var app = await TestApp.StartAsync(services: s => s.AddSingleton<IInterceptor>(failing));
        var http = app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(ObservabilitySetup.ReadyPath)).StatusCode);

        failing.FailAll();
        var down = await http.GetAsync(ObservabilitySetup.ReadyPath);
        var live = await http.GetAsync(ObservabilitySetup.LivePath);
        var legacy = await http.GetAsync("/healthz");
        failing.Heal();
        var ready = await ReadyWhenAsync(http, HttpStatusCode.OK);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        var checks = (await down.Json()).GetProperty("checks");
        Assert.Equal("unhealthy", checks.GetProperty("database").Str("status"));
        Assert.Equal("healthy", checks.GetProperty("redis").Str("status"));
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, legacy.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    [Fact]
    public async Task Ready_is_503_while_an_audit_entry_waits_in_the_outbox_past_its_bound_and_recovers_once_drained()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var failing = new FailingCommits();
        await using var app = await TestApp.StartAsync(clock, services: s => s.AddSingleton<IInterceptor>(failing),
            // (the timer bound is wide: moving the fake clock must not make the timer check the one that fails)
            settings: new Dictionary<string, string?> { ["Health:AuditOutboxMaxAge"] = "00:05:00", ["Health:TimerPassWithin"] = "1.00:00:00" });
        var http = app.CreateClient();
        await app.Agent("acme").GetAsync("/api/v1/approvals"); // warm the key cache: authentication itself reads the database
        failing.FailAll(); // the audit row's commit fails after the transition: its entry waits in the outbox
        await app.Agent("acme").SubmitPayment();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(ObservabilitySetup.ReadyPath)).StatusCode);

        clock.Advance(TimeSpan.FromMinutes(6));
        await app.Services.GetRequiredService<OperationsSnapshot>().RefreshAsync();
        var late = await http.GetAsync(ObservabilitySetup.ReadyPath);
        failing.Heal();
        await app.Services.GetRequiredService<AuditLog>().DrainOutboxAsync("acme", TimeSpan.Zero, CancellationToken.None);
        await app.Services.GetRequiredService<OperationsSnapshot>().RefreshAsync();
        var drained = await http.GetAsync(ObservabilitySetup.ReadyPath);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, late.StatusCode);
        var checks = (await late.Json()).GetProperty("checks");
        Assert.Equal("unhealthy", checks.GetProperty("audit_outbox").Str("status"));
        Assert.Contains("acme", checks.GetProperty("audit_outbox").Str("description"));
        Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
    }
}
