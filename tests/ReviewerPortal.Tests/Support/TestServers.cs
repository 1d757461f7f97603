using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// The real servers the tests talk to, started once per test run: an embedded Garnet (always), Debian's redis-server
/// and Debian's PostgreSQL (when installed; CI installs both, so there they always run).
/// </summary>
public static class TestServers
{
    /// <summary>Starts a background process whose output is read and dropped (a full pipe would stall it).</summary>
    public static Process StartQuiet(ProcessStartInfo start)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static readonly Lazy<Task<EmbeddedGarnet>> GarnetServer = new(StartGarnetAsync);
    private static readonly Lazy<Task<Process?>> RedisProcess = new(StartRedisAsync);
    private static int _redisPort;

    public const string RedisInstallHint = "redis-server is not installed: apt-get install -y redis-server";
    public const string PostgresInstallHint = "PostgreSQL is not installed: apt-get install -y postgresql";

    private static readonly Lazy<Task<OwnPostgresServer?>> PostgresServer = new(StartPostgresAsync);

    /// <summary>
    /// A new, empty database (<c>t_&lt;guid&gt;</c>) on the test run's PostgreSQL server, as an Npgsql connection string;
    /// null where PostgreSQL is not installed.
    /// </summary>
    public static async Task<string?> PostgresAsync()
    {
        var server = await PostgresServer.Value;
        return server is null ? null : await server.CreateDatabaseAsync();
    }

    private static async Task<OwnPostgresServer?> StartPostgresAsync()
    {
        var server = await OwnPostgresServer.StartAsync();
        if (server is not null)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        }
        return server;
    }

    public static async Task<string> GarnetAsync() => (await GarnetServer.Value).Endpoint;

    private static readonly Lazy<Task<string?>> Cluster = new(StartClusterAsync);

    /// <summary>
    /// A real 3-master Redis Cluster (redis-server <c>--cluster-enabled yes</c> on three loopback ports, joined with
    /// <c>redis-cli --cluster create</c>), as a configuration string naming all three; null where redis-server is not installed.
    /// </summary>
    public static Task<string?> RedisClusterAsync() => Cluster.Value;

    /// <summary>The redis-server endpoint, or null where redis-server is not installed.</summary>
    public static async Task<string?> RedisAsync() => await RedisProcess.Value is null ? null : $"127.0.0.1:{_redisPort}";

    public static string? RedisServerPath()
    {
        var configured = Environment.GetEnvironmentVariable("REDIS_SERVER");
        if (!string.IsNullOrEmpty(configured) && File.Exists(configured))
        {
            return configured;
        }
        return File.Exists("/usr/bin/redis-server") ? "/usr/bin/redis-server" : null;
    }

    public static string NewTempDirectory(string purpose)
    {
        var path = Path.Combine(Path.GetTempPath(), "rp-tests", $"{purpose}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    private static async Task<string?> StartClusterAsync()
    {
        var cli = File.Exists("/usr/bin/redis-cli") ? "/usr/bin/redis-cli" : null;
        if (RedisServerPath() is null || cli is null)
        {
            return null;
        }
        var nodes = new List<RedisServerProcess>();
        for (var i = 0; i < 3; i++)
        {
            // A node's cluster bus listens on its port + 10000: keep both below 65536 and free.
            var port = ClusterPort();
            var folder = NewTempDirectory("cluster");
            nodes.Add((await RedisServerProcess.StartAsync(port,
                "--cluster-enabled", "yes", "--cluster-config-file", Path.Combine(folder, "nodes.conf"), "--dir", folder,
                "--appendonly", "no", "--cluster-node-timeout", "5000"))!);
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var node in nodes)
            {
                node.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(5));
            }
        };
        var create = Process.Start(new ProcessStartInfo(cli,
            ["--cluster", "create", .. nodes.Select(n => n.Endpoint), "--cluster-replicas", "0", "--cluster-yes"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = await create.StandardOutput.ReadToEndAsync() + await create.StandardError.ReadToEndAsync();
        await create.WaitForExitAsync();
        if (create.ExitCode != 0)
        {
            throw new InvalidOperationException("redis-cli --cluster create failed: " + output);
        }
        // Every node must agree that all 16384 slots are served before the tests use it.
        var endpoints = string.Join(",", nodes.Select(n => n.Endpoint));
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var ok = 0;
            foreach (var node in nodes)
            {
                await using var mux = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(node.Endpoint + ",allowAdmin=true");
                var info = (string?)await mux.GetDatabase().ExecuteAsync("CLUSTER", "INFO");
                ok += info?.Contains("cluster_state:ok", StringComparison.Ordinal) == true ? 1 : 0;
            }
            if (ok == nodes.Count && await TakesWritesAsync(endpoints))
            {
                return endpoints;
            }
            await Task.Delay(50);
        }
        throw new InvalidOperationException("The Redis Cluster did not reach cluster_state:ok.");
    }

    /// <summary>
    /// Every node saying <c>cluster_state:ok</c> was not always enough: a test that ran at once got <c>CLUSTERDOWN</c>
    /// now and then. The cluster is ready once a cluster client writes 64 keys spread over the slots (so on every node's
    /// range, but for a chance of about 3 · (2/3)^64), three rounds in a row.
    /// </summary>
    private static async Task<bool> TakesWritesAsync(string endpoints)
    {
        try
        {
            await using var mux = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(endpoints);
            var db = mux.GetDatabase();
            for (var round = 0; round < 3; round++)
            {
                for (var slot = 0; slot < 64; slot++)
                {
                    await db.StringSetAsync($"ready:{slot}", round, TimeSpan.FromSeconds(10));
                }
                await Task.Delay(50);
            }
            return true;
        }
        catch (StackExchange.Redis.RedisException)
        {
            return false;
        }
    }

    private static int ClusterPort() => LowFreePort(alsoFree: 10000);

    /// <summary>
    /// A free loopback port below 55000 (and, with <paramref name="alsoFree"/>, that port plus it free too: a Redis
    /// Cluster node's bus port). Ephemeral ports run high on Linux: step down into a lower range when needed.
    /// </summary>
    public static int LowFreePort(int? alsoFree = null)
    {
        while (true)
        {
            var port = FreePort.Pick();
            if (port < 55000 && (alsoFree is null || IsFree(port + alsoFree.Value)))
            {
                return port;
            }
            var candidate = 20000 + port % 30000;
            if (IsFree(candidate) && (alsoFree is null || IsFree(candidate + alsoFree.Value)))
            {
                return candidate;
            }
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(System.Net.IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task<EmbeddedGarnet> StartGarnetAsync()
    {
        var garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = NewTempDirectory("garnet") },
            NullLogger.Instance, CancellationToken.None);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => garnet.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        return garnet;
    }

    private static async Task<Process?> StartRedisAsync()
    {
        if (RedisServerPath() is null)
        {
            return null;
        }
        var server = await RedisServerProcess.StartAsync("--appendonly", "no");
        _redisPort = server.Port;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Kill();
        return server.Process;
    }
}

/// <summary>
/// A redis-server of a test's own (Debian's, see <see cref="TestServers.RedisServerPath"/>), on a free loopback port with
/// its files in a temporary folder, e.g. with <c>--appendonly yes</c> or as a replica of another.
/// </summary>
public sealed class RedisServerProcess : IAsyncDisposable
{
    private RedisServerProcess(Process process, int port, string dataPath)
    {
        Process = process;
        Port = port;
        DataPath = dataPath;
    }

    public Process Process { get; }
    public int Port { get; }
    public string DataPath { get; }
    public string Endpoint => $"127.0.0.1:{Port}";

    public static Task<RedisServerProcess> StartAsync(params string[] settings) => StartAsync(FreePort.Pick(), settings);

    /// <summary>Starts one on <paramref name="port"/>; later settings win over the defaults.</summary>
    public static async Task<RedisServerProcess> StartAsync(int port, params string[] settings)
    {
        var path = TestServers.RedisServerPath() ?? throw new InvalidOperationException(TestServers.RedisInstallHint);
        var data = TestServers.NewTempDirectory("redis-server");
        var process = TestServers.StartQuiet(new ProcessStartInfo(path,
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--dir", data, .. settings]));
        for (var i = 0; i < 200; i++)
        {
            // Ready once it answers PONG: a server that listens may still be loading its append-only file.
            if (await AnswersPingAsync(port))
            {
                return new RedisServerProcess(process, port, data);
            }
            await Task.Delay(25); // the process is still starting (not an app timer)
        }
        process.Kill();
        throw new InvalidOperationException("redis-server did not start.");
    }

    private static async Task<bool> AnswersPingAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var reply = new byte[64];
            var read = await stream.ReadAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(2));
            // A server started with --requirepass answers NOAUTH: it is up (and has loaded its data) all the same.
            var text = System.Text.Encoding.ASCII.GetString(reply, 0, read);
            return text.StartsWith("+PONG", StringComparison.Ordinal) || text.StartsWith("-NOAUTH", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
        {
            return false;
        }
    }

    public void Kill()
    {
        if (!Process.HasExited)
        {
            Process.Kill();
            Process.WaitForExit(5000);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        Process.Dispose();
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }
}
