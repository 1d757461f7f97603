using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>The embedded server as the app runs it: real Garnet processes, real kill -9.</summary>
public sealed class EmbeddedGarnetTests
{
    private static Task<EmbeddedGarnet> Start(string data) =>
        EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data }, NullLogger.Instance, CancellationToken.None);

    [Fact]
    public async Task Data_survives_kill_9_of_the_server()
    {
        var data = TestServers.NewTempDirectory("garnet-kill");
        var first = await Start(data);
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(first.Endpoint))
        {
            var db = mux.GetDatabase();
            await db.StringSetAsync("s", "v");
            await db.HashSetAsync("h", [new HashEntry("state", "pending"), new HashEntry("seq", 3)]);
            await db.KeyExpireAsync("h", TimeSpan.FromHours(5));
            await db.SortedSetAddAsync("z", [new SortedSetEntry("a", 1), new SortedSetEntry("b", 2)]);
            await db.ScriptEvaluateAsync("redis.call('HSET', KEYS[1], 'via', 'lua'); return redis.call('LPUSH', KEYS[2], ARGV[1])",
                ["h", "l"], ["entry"]);
        }
        Process.GetProcessById(first.ProcessId).Kill(); // SIGKILL: no shutdown, no flush
        await Process.GetProcessById(first.ProcessId).WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { });

        await using var second = await Start(data);
        await using var again = await ConnectionMultiplexer.ConnectAsync(second.Endpoint);
        var read = again.GetDatabase();

        Assert.False(second.Reused);
        Assert.Equal("v", (string?)await read.StringGetAsync("s"));
        Assert.Equal("pending", (string?)await read.HashGetAsync("h", "state"));
        Assert.Equal("lua", (string?)await read.HashGetAsync("h", "via"));
        Assert.InRange((await read.KeyTimeToLiveAsync("h"))!.Value, TimeSpan.FromHours(4.9), TimeSpan.FromHours(5));
        Assert.Equal(["a", "b"], (await read.SortedSetRangeByRankAsync("z")).Select(v => (string)v!));
        Assert.Equal("entry", (string?)await read.ListGetByIndexAsync("l", 0));
    }

    /// <summary>
    /// Every guarantee that rests on one script (a decision's check-and-write, a publish's push-and-mark) needs the
    /// server to run a script as one step. Garnet runs a script's commands without locking its keys unless started in
    /// its Lua transaction mode, so scripts on other connections interleave: a read-modify-write then loses updates.
    /// </summary>
    [Fact]
    public async Task A_script_runs_as_one_step_however_many_connections_run_it_at_once()
    {
        await using var garnet = await Start(TestServers.NewTempDirectory("garnet-atomic"));
        const string increment = "local v = tonumber(redis.call('GET', KEYS[1]) or '0'); redis.call('SET', KEYS[1], tostring(v + 1)); return v + 1";
        const int connections = 8, each = 1500;
        var muxes = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => ConnectionMultiplexer.ConnectAsync(garnet.Endpoint)));
        try
        {
            await Task.WhenAll(muxes.Select(mux => Task.Run(async () =>
            {
                var db = mux.GetDatabase();
                for (var i = 0; i < each; i += 50)
                {
                    await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => db.ScriptEvaluateAsync(increment, ["{t}counter"])));
                }
            })));

            Assert.Equal(connections * each, (int)await muxes[0].GetDatabase().StringGetAsync("{t}counter"));
        }
        finally
        {
            foreach (var mux in muxes)
            {
                await mux.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_server_left_running_without_the_transaction_mode_is_replaced_not_reused_and_keeps_its_data()
    {
        var data = TestServers.NewTempDirectory("garnet-old-orphan");
        // As an earlier version started it (scripts not run as transactions), then the app died without disposing it.
        var orphan = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data, LuaTransactions = false },
            NullLogger.Instance, CancellationToken.None);
        await using (var mux = await ConnectionMultiplexer.ConnectAsync(orphan.Endpoint))
        {
            await mux.GetDatabase().StringSetAsync("kept", "yes");
            await mux.GetDatabase().ExecuteAsync("COMMITAOF");
        }

        await using var next = await Start(data);

        Assert.False(next.Reused);
        Assert.NotEqual(orphan.ProcessId, next.ProcessId);
        Assert.False(IsRunning(orphan.ProcessId));
        await using var again = await ConnectionMultiplexer.ConnectAsync(next.Endpoint);
        Assert.Equal("yes", (string?)await again.GetDatabase().StringGetAsync("kept"));
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Server_orphaned_by_a_killed_app_is_reused_at_the_next_start()
    {
        var data = TestServers.NewTempDirectory("garnet-orphan");
        var orphan = await Start(data); // the "app" dies without disposing it

        await using var next = await Start(data);

        Assert.True(next.Reused);
        Assert.Equal(orphan.ProcessId, next.ProcessId);
        Assert.Equal(orphan.Port, next.Port);
        Assert.True(await EmbeddedGarnet.PingAsync(next.Port, null, CancellationToken.None));
    }

    [Fact]
    public async Task Orphan_that_takes_connections_without_the_password_is_replaced_not_reused()
    {
        var data = TestServers.NewTempDirectory("garnet-upgrade");
        var orphan = await Start(data); // left running by a version that set no password

        await using var next = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = data, Password = "the-new-password" },
            NullLogger.Instance, CancellationToken.None);

        Assert.False(next.Reused);
        Assert.NotEqual(orphan.ProcessId, next.ProcessId);
        Assert.False(await EmbeddedGarnet.PingAsync(next.Port, null, CancellationToken.None));
        Assert.True(await EmbeddedGarnet.PingAsync(next.Port, "the-new-password", CancellationToken.None));
        Assert.False(File.Exists(Path.Combine(data, "garnet-auth.conf")), "the file that gave Garnet its password is gone once it runs");
    }

    [Fact]
    public async Task Stale_pid_file_starts_a_fresh_server_and_dispose_stops_it()
    {
        var data = TestServers.NewTempDirectory("garnet-stale");
        await File.WriteAllTextAsync(Path.Combine(data, "garnet.pid.json"), """{"Pid":999999,"Port":1,"DataPath":"x"}""");

        var garnet = await Start(data);
        Assert.False(garnet.Reused);
        var pid = garnet.ProcessId;
        await garnet.DisposeAsync();

        Assert.False(File.Exists(Path.Combine(data, "garnet.pid.json")));
        Assert.False(await EmbeddedGarnet.PingAsync(garnet.Port, null, CancellationToken.None));
        Assert.ThrowsAny<Exception>(() => Process.GetProcessById(pid).Kill());
    }
}
