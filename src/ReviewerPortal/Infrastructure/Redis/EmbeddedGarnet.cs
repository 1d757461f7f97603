using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ReviewerPortal.Infrastructure.Redis;

public sealed class EmbeddedGarnetOptions
{
    /// <summary>Folder for the checkpoints and the append-only log (created when missing).</summary>
    public required string DataPath { get; init; }

    /// <summary>Loopback port; null picks a free one.</summary>
    public int? Port { get; init; }

    /// <summary>Every reply waits for the append-only log flush (power-loss safe, slower).</summary>
    public bool CommitWait { get; init; }

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Path of GarnetServer.dll; null finds it beside the app or in the NuGet cache.</summary>
    public string? ServerPath { get; init; }
}

/// <summary>
/// Garnet (Microsoft's Redis-compatible server) as a child process with its append-only log on, so a restart
/// loses nothing. A process cannot be made to die with its parent on every OS, so the server's pid and port are
/// written to <c>garnet.pid.json</c> in the data folder: after a hard kill of the app, the next start finds the
/// orphan and reuses it when it answers (or replaces it when it does not).
/// </summary>
public sealed class EmbeddedGarnet : IAsyncDisposable
{
    public const string Version = "2.2.8";
    private const string PidFileName = "garnet.pid.json";

    private readonly Process? _process;
    private readonly string _pidFile;
    private readonly ILogger _logger;

    private EmbeddedGarnet(int port, int processId, Process? process, bool reused, string pidFile, ILogger logger)
    {
        Port = port;
        ProcessId = processId;
        _process = process;
        Reused = reused;
        _pidFile = pidFile;
        _logger = logger;
    }

    public int Port { get; }
    public int ProcessId { get; }
    public bool Reused { get; }
    public string Endpoint => $"127.0.0.1:{Port}";

    public static async Task<EmbeddedGarnet> StartAsync(EmbeddedGarnetOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var dataPath = Path.GetFullPath(options.DataPath);
        Directory.CreateDirectory(dataPath);
        var pidFile = Path.Combine(dataPath, PidFileName);

        if (await TryReuseAsync(pidFile, dataPath, logger, cancellationToken) is { } reused)
        {
            return reused;
        }

        var server = FindServer(options.ServerPath)
            ?? throw new InvalidOperationException(
                $"GarnetServer.dll {Version} was not found beside the app (garnet/) nor in the NuGet cache; run 'dotnet restore', " +
                "or set Redis:Configuration to use an existing Redis.");
        var port = options.Port ?? FreePort.Pick();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dataPath,
        };
        foreach (var arg in (string[])
                 [
                     server, "--port", port.ToString(), "--bind", "127.0.0.1", "--lua", "true",
                     "--aof", "--aof-commit-freq", "0", "--device-type", "RandomAccess",
                     "--checkpointdir", dataPath, "--recover",
                 ])
        {
            start.ArgumentList.Add(arg);
        }
        if (options.CommitWait)
        {
            start.ArgumentList.Add("--aof-commit-wait");
        }

        var output = new Queue<string>();
        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start Garnet.");
        void Collect(string? line, bool error)
        {
            if (line is null)
            {
                return;
            }
            lock (output)
            {
                output.Enqueue(line);
                if (output.Count > 40)
                {
                    output.Dequeue();
                }
            }
            if (error)
            {
                logger.LogWarning("garnet: {Line}", line);
            }
            else
            {
                logger.LogDebug("garnet: {Line}", line);
            }
        }
        process.OutputDataReceived += (_, e) => Collect(e.Data, false);
        process.ErrorDataReceived += (_, e) => Collect(e.Data, true);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!await PingAsync(port, cancellationToken))
        {
            if (process.HasExited || deadline.Elapsed > options.StartTimeout)
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
                string tail;
                lock (output)
                {
                    tail = string.Join(Environment.NewLine, output);
                }
                throw new InvalidOperationException($"Garnet did not start on port {port}:{Environment.NewLine}{tail}");
            }
            await Task.Delay(50, cancellationToken);
        }

        await File.WriteAllTextAsync(pidFile, JsonSerializer.Serialize(new PidRecord(process.Id, port, dataPath)), cancellationToken);
        logger.LogInformation("Embedded Garnet {Version} listening on 127.0.0.1:{Port} (pid {Pid}), data in {DataPath}",
            Version, port, process.Id, dataPath);
        return new EmbeddedGarnet(port, process.Id, process, false, pidFile, logger);
    }

    private static async Task<EmbeddedGarnet?> TryReuseAsync(string pidFile, string dataPath, ILogger logger, CancellationToken cancellationToken)
    {
        if (!File.Exists(pidFile))
        {
            return null;
        }
        PidRecord? record;
        try
        {
            record = JsonSerializer.Deserialize<PidRecord>(await File.ReadAllTextAsync(pidFile, cancellationToken));
        }
        catch (JsonException)
        {
            record = null;
        }
        File.Delete(pidFile);
        if (record is null || !IsOurServer(record.Pid, dataPath))
        {
            return null;
        }
        if (await PingAsync(record.Port, cancellationToken))
        {
            logger.LogWarning("Reusing embedded Garnet left running by an earlier start (pid {Pid}, port {Port})", record.Pid, record.Port);
            await File.WriteAllTextAsync(pidFile, JsonSerializer.Serialize(record), cancellationToken);
            Process? process = null;
            try
            {
                process = Process.GetProcessById(record.Pid);
            }
            catch (ArgumentException)
            {
            }
            return new EmbeddedGarnet(record.Port, record.Pid, process, true, pidFile, logger);
        }
        logger.LogWarning("Replacing an unresponsive embedded Garnet (pid {Pid})", record.Pid);
        try
        {
            Process.GetProcessById(record.Pid).Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
        }
        return null;
    }

    /// <summary>True when the process runs GarnetServer on this data folder (not a recycled pid of something else).</summary>
    private static bool IsOurServer(int pid, string dataPath)
    {
        var cmdline = $"/proc/{pid}/cmdline";
        if (File.Exists(cmdline))
        {
            string text;
            try
            {
                text = File.ReadAllText(cmdline).Replace('\0', ' ');
            }
            catch (IOException)
            {
                return false; // it exited between the two calls (a server just killed): not running
            }
            return text.Contains("GarnetServer", StringComparison.Ordinal) && text.Contains(dataPath, StringComparison.Ordinal);
        }
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited && process.ProcessName.Contains("dotnet", StringComparison.OrdinalIgnoreCase);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    public static string? FindServer(string? configured = null)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(configured) ? configured : null;
        }
        var beside = Path.Combine(AppContext.BaseDirectory, "garnet", "GarnetServer.dll");
        if (File.Exists(beside))
        {
            return beside;
        }
        var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                    ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var cached = Path.Combine(cache, "garnet-server", Version, "tools", "net10.0", "any", "GarnetServer.dll");
        return File.Exists(cached) ? cached : null;
    }

    /// <summary>Sends a RESP PING and expects +PONG.</summary>
    public static async Task<bool> PingAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            var stream = client.GetStream();
            await stream.WriteAsync("*1\r\n$4\r\nPING\r\n"u8.ToArray(), timeout.Token);
            var buffer = new byte[16];
            var read = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, read).StartsWith("+PONG", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_process is { HasExited: false })
            {
                // The append-only log is flushed on every write (--aof-commit-freq 0): stopping loses nothing.
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or TimeoutException)
        {
            _logger.LogWarning(ex, "Stopping embedded Garnet failed");
        }
        finally
        {
            _process?.Dispose();
            if (File.Exists(_pidFile))
            {
                File.Delete(_pidFile);
            }
        }
    }

    private sealed record PidRecord(int Pid, int Port, string DataPath);
}

public static class FreePort
{
    /// <summary>A loopback port free right now (the OS picks it).</summary>
    public static int Pick()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
