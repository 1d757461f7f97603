using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// A PostgreSQL server of the tests' own (Debian's <c>postgresql</c> package): a fresh cluster in a temporary folder
/// on a free loopback port, trust authentication, no fsync (commits still reach the OS before they return, so a
/// server stopped with <c>-m immediate</c> and started again keeps them). The server refuses to run as root, so as
/// root it runs as the <c>postgres</c> user through <c>runuser</c>. Stopped (<c>pg_ctl stop -m immediate</c>) on
/// dispose, and by a watchdog when the test process ends without disposing it.
/// </summary>
public sealed class OwnPostgresServer : IAsyncDisposable
{
    private readonly string _bin;
    private readonly string _dir;
    private bool _running;

    private OwnPostgresServer(string bin, string dir, int port)
    {
        _bin = bin;
        _dir = dir;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The server's own <c>postgres</c> database, to create others.</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    /// <summary>The folder holding PostgreSQL's programs (the newest <c>/usr/lib/postgresql/*/bin</c>), or null.</summary>
    public static string? BinPath()
    {
        var configured = Environment.GetEnvironmentVariable("PG_BIN");
        if (!string.IsNullOrEmpty(configured) && File.Exists(Path.Combine(configured, "pg_ctl")))
        {
            return configured;
        }
        if (!Directory.Exists("/usr/lib/postgresql"))
        {
            return null;
        }
        return Directory.GetDirectories("/usr/lib/postgresql")
            .Select(d => (Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0, Bin: Path.Combine(d, "bin")))
            .Where(d => File.Exists(Path.Combine(d.Bin, "initdb")) && File.Exists(Path.Combine(d.Bin, "pg_ctl")))
            .OrderByDescending(d => d.Version)
            .Select(d => d.Bin)
            .FirstOrDefault();
    }

    /// <summary>Creates and starts a cluster; null where PostgreSQL is not installed.</summary>
    public static async Task<OwnPostgresServer?> StartAsync()
    {
        var bin = BinPath();
        if (bin is null)
        {
            return null;
        }
        var dir = TestServers.NewTempDirectory("postgres");
        if (IsRoot)
        {
            await RunAsync("chown", ["postgres:", dir]);
        }
        await RunAsPostgresAsync(Path.Combine(bin, "initdb"),
            ["-D", dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);
        var server = new OwnPostgresServer(bin, dir, TestServers.LowFreePort());
        await server.StartAgainAsync();
        server.WatchThisProcess();
        return server;
    }

    /// <summary>
    /// pg_ctl runs the server detached, and a test host is not always given the time to run its exit handlers: a
    /// small watchdog stops the server and removes its folder once this process is gone, however it ends.
    /// </summary>
    private void WatchThisProcess()
    {
        var stop = $"{Path.Combine(_bin, "pg_ctl")} -D {_dir} -m immediate -w stop";
        var script = $"exec </dev/null >/dev/null 2>&1; while [ -d /proc/{Environment.ProcessId} ]; do sleep 1; done; " +
                     (IsRoot ? $"runuser -u postgres -- {stop}" : stop) + $"; rm -rf {_dir}";
        using var watchdog = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", script])
        {
            UseShellExecute = false,
            WorkingDirectory = "/",
        });
    }

    /// <summary>Starts the server (again) on its folder and port.</summary>
    public async Task StartAgainAsync()
    {
        await RunAsPostgresAsync(Path.Combine(_bin, "pg_ctl"),
        [
            "-D", _dir, "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60",
            "-o", $"-p {Port} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=off " +
                  "-c full_page_writes=off -c max_connections=300",
            "start",
        ]);
        _running = true;
        for (var i = 0; i < 200; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", Port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(25);
            }
        }
        throw new InvalidOperationException("PostgreSQL did not start: " + await File.ReadAllTextAsync(Path.Combine(_dir, "server.log")));
    }

    /// <summary>Stops the server at once (connections are cut, as when a database host goes away).</summary>
    public async Task StopAsync()
    {
        if (!_running)
        {
            return;
        }
        _running = false;
        await RunAsPostgresAsync(Path.Combine(_bin, "pg_ctl"), ["-D", _dir, "-m", "immediate", "-w", "stop"]);
    }

    /// <summary>Creates an empty database <c>t_&lt;guid&gt;</c> and answers its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"t_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(AdminConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name}";
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    private static Task RunAsPostgresAsync(string program, string[] args) =>
        IsRoot ? RunAsync("runuser", ["-u", "postgres", "--", program, .. args]) : RunAsync(program, args);

    private static async Task RunAsync(string program, string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {await output}{await error}");
        }
    }
}
