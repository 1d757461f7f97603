using System.Net;
using System.Text.Json;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>
/// Against Debian's redis-server: /healthz warns about settings that lose acknowledged writes, and audit commits wait
/// for what the server offers (WAITAOF with AOF on Redis 7.2+, WAIT with replicas).
/// </summary>
public sealed class RedisDurabilityTests
{
    [SkippableFact]
    public async Task Health_warns_when_the_configured_redis_runs_without_aof()
    {
        var endpoint = await TestServers.RedisAsync();
        Skip.If(endpoint is null, TestServers.RedisInstallHint);
        await using var app = await TestApp.StartAsync(redis: endpoint);

        var response = await app.CreateClient().GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var health = await response.Json();
        Assert.Contains(Warnings(health), w => w.Contains("without AOF", StringComparison.Ordinal));
        Assert.Equal("none", health.GetProperty("durability").Str("mode"));
    }

    [SkippableFact]
    public async Task Server_with_aof_gets_no_aof_warning_and_commits_wait_for_its_log()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        await using var server = await RedisServerProcess.StartAsync("--appendonly", "yes", "--appendfsync", "always");
        await using var app = await TestApp.StartAsync(redis: server.Endpoint);

        var health = await (await app.CreateClient().GetAsync("/healthz")).Json();

        Assert.DoesNotContain(Warnings(health), w => w.Contains("AOF", StringComparison.Ordinal) || w.Contains("appendfsync", StringComparison.Ordinal));
        var version = await ServerVersionAsync(server.Endpoint);
        if (version < new Version(7, 2))
        {
            // No WAITAOF before Redis 7.2: with appendfsync always every write is on disk before its reply, nothing to wait for.
            Assert.Equal("none", health.GetProperty("durability").Str("mode"));
            return;
        }
        Assert.Equal("waitaof", health.GetProperty("durability").Str("mode"));
        await app.Agent("acme").SubmitPayment();
        var after = (await (await app.CreateClient().GetAsync("/healthz")).Json()).GetProperty("durability");
        Assert.True(after.GetProperty("waits").GetInt64() >= 1);
        Assert.Equal(0, after.GetProperty("shortfalls").GetInt64());
    }

    [Fact]
    public async Task On_garnet_every_batch_commits_its_append_only_log_before_anyone_is_answered()
    {
        await using var app = await TestApp.StartAsync(); // Garnet, append-only log on

        var before = (await (await app.CreateClient().GetAsync("/healthz")).Json()).GetProperty("durability");
        Assert.Equal("commitaof", before.Str("mode"));
        await app.Agent("acme").SubmitPayment();
        var after = (await (await app.CreateClient().GetAsync("/healthz")).Json()).GetProperty("durability");

        Assert.True(after.GetProperty("waits").GetInt64() > before.GetProperty("waits").GetInt64());
        Assert.Equal(0, after.GetProperty("shortfalls").GetInt64());
    }

    [SkippableFact]
    public async Task Commits_wait_for_the_replica_and_a_lost_replica_is_counted_not_failed()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        await using var primary = await RedisServerProcess.StartAsync("--appendonly", "no");
        await using var replica = await RedisServerProcess.StartAsync("--replicaof", "127.0.0.1", primary.Port.ToString());
        await ReplicaOnlineAsync(primary.Endpoint);
        await using var app = await TestApp.StartAsync(redis: primary.Endpoint,
            settings: new Dictionary<string, string?> { ["Redis:DurabilityWaitTimeout"] = "00:00:02" }); // generous: a loaded CI machine
        var agent = app.Agent("acme");

        var start = await Durability(app);
        Assert.Equal("wait 1", start.Str("mode"));
        await agent.SubmitPayment(1);
        var waited = await Durability(app);
        Assert.True(waited.GetProperty("waits").GetInt64() > start.GetProperty("waits").GetInt64());
        Assert.Equal(start.GetProperty("shortfalls").GetInt64(), waited.GetProperty("shortfalls").GetInt64());

        replica.Kill(); // its acknowledgements stop: the wait comes back short, the transition stands
        var parked = await agent.SubmitPayment(2);
        Assert.Equal("pending", (await (await agent.GetAsync($"/api/v1/approvals/{parked.Str("approvalId")}")).Json()).Str("state"));
        Assert.True((await Durability(app)).GetProperty("shortfalls").GetInt64() > waited.GetProperty("shortfalls").GetInt64());
    }

    private static IReadOnlyList<string> Warnings(JsonElement health) =>
        [.. health.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()!)];

    private static async Task<JsonElement> Durability(TestApp app) =>
        (await (await app.CreateClient().GetAsync("/healthz")).Json()).GetProperty("durability");

    private static async Task<Version> ServerVersionAsync(string endpoint)
    {
        await using var mux = await ConnectionMultiplexer.ConnectAsync(endpoint);
        return mux.GetServer(endpoint).Version;
    }

    private static async Task ReplicaOnlineAsync(string primary)
    {
        await using var mux = await ConnectionMultiplexer.ConnectAsync(primary);
        for (var i = 0; i < 200; i++)
        {
            var info = (string?)await mux.GetDatabase().ExecuteAsync("INFO", "replication") ?? "";
            if (info.Contains("state=online", StringComparison.Ordinal))
            {
                return;
            }
            await Task.Delay(50); // the replica's initial sync (another process, not an app timer)
        }
        throw new InvalidOperationException("The replica did not come online.");
    }
}
