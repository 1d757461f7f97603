using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// The real Redis-protocol servers the tests talk to, started once per test run: an embedded Garnet (always) and
/// Debian's redis-server (when installed; CI installs it, so there it always runs).
/// </summary>
public static class TestServers
{
    private static readonly Lazy<Task<EmbeddedGarnet>> GarnetServer = new(StartGarnetAsync);
    private static readonly Lazy<Task<Process?>> RedisProcess = new(StartRedisAsync);
    private static int _redisPort;

    public const string RedisInstallHint = "redis-server is not installed: apt-get install -y redis-server";

    public static async Task<string> GarnetAsync() => (await GarnetServer.Value).Endpoint;

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

    private static async Task<EmbeddedGarnet> StartGarnetAsync()
    {
        var garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions { DataPath = NewTempDirectory("garnet") },
            NullLogger.Instance, CancellationToken.None);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => garnet.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
        return garnet;
    }

    private static async Task<Process?> StartRedisAsync()
    {
        var path = RedisServerPath();
        if (path is null)
        {
            return null;
        }
        _redisPort = FreePort.Pick();
        var process = Process.Start(new ProcessStartInfo(path,
            ["--port", _redisPort.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        };
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", _redisPort);
                return process;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }
        throw new InvalidOperationException("redis-server did not start.");
    }
}

/// <summary>A redis-server of a test's own (for faults that must not touch the shared one), stopped on dispose.</summary>
public sealed class OwnRedisServer : IAsyncDisposable
{
    private readonly Process _process;

    private OwnRedisServer(Process process, int port)
    {
        _process = process;
        Endpoint = $"127.0.0.1:{port}";
    }

    public string Endpoint { get; }

    /// <summary>Starts one on a free loopback port with the given extra arguments; null where redis-server is not installed.</summary>
    public static async Task<OwnRedisServer?> StartAsync(params string[] args)
    {
        var path = TestServers.RedisServerPath();
        if (path is null)
        {
            return null;
        }
        var port = FreePort.Pick();
        var dir = TestServers.NewTempDirectory("redis");
        var process = Process.Start(new ProcessStartInfo(path,
            ["--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--dir", dir, "--daemonize", "no", .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return new OwnRedisServer(process, port);
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }
        process.Kill();
        throw new InvalidOperationException("redis-server did not start.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
