using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ReviewerPortal.Infrastructure.Redis;

public sealed record EmbeddedGarnetOptions
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

    /// <summary>
    /// The password every connection must give (<c>AUTH</c>); null: none (test harnesses only; the app always sets one,
    /// see <see cref="EmbeddedGarnet.LoadOrCreatePassword"/>). It reaches Garnet through a file readable only by this
    /// user, never on the command line, where every user of the host could read it.
    /// </summary>
    public string? Password { get; init; }

    /// <summary>Count calls per command for <c>INFO commandstats</c> (<c>--commandstats-monitor</c>; the load harness only).</summary>
    public bool CommandStats { get; init; }

    /// <summary>
    /// Scripts run as transactions (<c>--lua-transaction-mode</c>): always, but for a test that plays a server left
    /// running by a version started without it.
    /// </summary>
    internal bool LuaTransactions { get; init; } = true;
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
    private const string AuthConfigFileName = "garnet-auth.conf";

    /// <summary>The generated password of the embedded server, in its data folder (mode 600).</summary>
    public const string PasswordFileName = "redis-password";

    private readonly Process? _process;
    private readonly string _pidFile;
    private readonly ILogger _logger;

    private EmbeddedGarnet(int port, int processId, Process? process, bool reused, string pidFile, ILogger logger, string? password = null)
    {
        Password = password;
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

    /// <summary>The password connections give, or null when the server takes connections without one.</summary>
    public string? Password { get; }

    /// <summary>
    /// The embedded server's password from <c>redis-password</c> in <paramref name="dataPath"/>, created at the first
    /// start (32 random bytes, base64url) readable and writable by the app's user only (mode 600 on Unix; a file found
    /// with wider permissions is narrowed).
    /// </summary>
    public static string LoadOrCreatePassword(string dataPath)
    {
        Directory.CreateDirectory(dataPath);
        var file = Path.Combine(dataPath, PasswordFileName);
        if (!File.Exists(file))
        {
            WritePrivateFile(file, System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        }
        else if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(file) & ~(UnixFileMode.UserRead | UnixFileMode.UserWrite)) != 0)
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        var password = File.ReadAllText(file).Trim();
        return password.Length > 0
            ? password
            : throw new InvalidOperationException($"{file} is empty: delete it (a new password is generated) or set Redis:Password.");
    }

    /// <summary>Writes a file only its owner can read (created so, never widened in between), replacing any before.</summary>
    private static void WritePrivateFile(string file, string text)
    {
        var temp = file + "." + Guid.NewGuid().ToString("N") + ".tmp";
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(temp, fileOptions))
        {
            stream.Write(Encoding.UTF8.GetBytes(text));
        }
        File.Move(temp, file, overwrite: true);
    }

    public static async Task<EmbeddedGarnet> StartAsync(EmbeddedGarnetOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var dataPath = Path.GetFullPath(options.DataPath);
        Directory.CreateDirectory(dataPath);
        var pidFile = Path.Combine(dataPath, PidFileName);

        if (await TryReuseAsync(pidFile, dataPath, options.Password, logger, cancellationToken) is { } reused)
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
        if (options.LuaTransactions)
        {
            // A script is one step (its keys locked while it runs): without the transaction mode Garnet interleaves
            // scripts on other connections. Its writes still enter the log one by one (ReleaseRepair).
            start.ArgumentList.Add(LuaTransactionMode);
            start.ArgumentList.Add("true");
        }
        if (options.CommitWait)
        {
            start.ArgumentList.Add("--aof-commit-wait");
        }
        if (options.CommandStats)
        {
            start.ArgumentList.Add("--commandstats-monitor");
        }
        var authConfig = Path.Combine(dataPath, AuthConfigFileName);
        if (options.Password is not null)
        {
            // Garnet reads it at start; the file is removed once the server answers.
            WritePrivateFile(authConfig, JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["AuthenticationMode"] = "Password",
                ["Password"] = options.Password,
            }));
            start.ArgumentList.Add("--config-import-path");
            start.ArgumentList.Add(authConfig);
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
        while (!await PingAsync(port, options.Password, cancellationToken))
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
                File.Delete(authConfig);
                throw new InvalidOperationException($"Garnet did not start on port {port}:{Environment.NewLine}{tail}");
            }
            await Task.Delay(50, cancellationToken);
        }
        File.Delete(authConfig);

        await File.WriteAllTextAsync(pidFile, JsonSerializer.Serialize(new PidRecord(process.Id, port, dataPath)), cancellationToken);
        logger.LogInformation("Embedded Garnet {Version} listening on 127.0.0.1:{Port} (pid {Pid}), data in {DataPath}, {Auth}",
            Version, port, process.Id, dataPath, options.Password is null ? "no password" : "password required");
        return new EmbeddedGarnet(port, process.Id, process, false, pidFile, logger, options.Password);
    }

    private static async Task<EmbeddedGarnet?> TryReuseAsync(string pidFile, string dataPath, string? password, ILogger logger,
        CancellationToken cancellationToken)
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
        if (!RunsScriptsAsTransactions(record.Pid))
        {
            // Left by a version that started Garnet without the Lua transaction mode: not reused, replaced.
            logger.LogWarning("Replacing an embedded Garnet started without Lua transaction mode (pid {Pid})", record.Pid);
            await KillAsync(record.Pid);
            return null;
        }
        // An orphan started with another password (or none) does not answer this one: it is replaced.
        if (await PingAsync(record.Port, password, cancellationToken))
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
            return new EmbeddedGarnet(record.Port, record.Pid, process, true, pidFile, logger, password);
        }
        logger.LogWarning("Replacing an unresponsive embedded Garnet (pid {Pid})", record.Pid);
        await KillAsync(record.Pid);
        return null;
    }

    private const string LuaTransactionMode = "--lua-transaction-mode";

    /// <summary>False when the process's command line shows it runs scripts without the transaction mode (Linux).</summary>
    private static bool RunsScriptsAsTransactions(int pid)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            var at = Array.IndexOf(args, LuaTransactionMode);
            return at >= 0 && at + 1 < args.Length && args[at + 1] == "true";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true; // no /proc here (or it exited): nothing tells otherwise
        }
    }

    private static async Task KillAsync(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or TimeoutException)
        {
        }
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

    /// <summary>Sends a RESP PING (after <c>AUTH</c> with <paramref name="password"/>, when given) and expects +PONG.</summary>
    public static async Task<bool> PingAsync(int port, string? password, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
            var stream = client.GetStream();
            var request = new StringBuilder();
            var expected = "";
            if (password is not null)
            {
                request.Append($"*2\r\n$4\r\nAUTH\r\n${Encoding.UTF8.GetByteCount(password)}\r\n{password}\r\n");
                expected = "+OK\r\n";
            }
            request.Append("*1\r\n$4\r\nPING\r\n");
            expected += "+PONG\r\n";
            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), timeout.Token);
            var reply = new StringBuilder();
            var buffer = new byte[64];
            while (reply.Length < expected.Length)
            {
                var read = await stream.ReadAsync(buffer, timeout.Token);
                if (read == 0)
                {
                    break;
                }
                reply.Append(Encoding.ASCII.GetString(buffer, 0, read));
                if (!expected.StartsWith(reply.ToString(), StringComparison.Ordinal))
                {
                    break; // an error (NOAUTH, WRONGPASS) or something else: not this server, or not this password
                }
            }
            return reply.ToString().StartsWith(expected, StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Completes when the server's process has exited (killed, crashed), whether this app started it or reused it.</summary>
    public async Task WaitForExitAsync(CancellationToken cancellationToken)
    {
        if (_process is not null)
        {
            await _process.WaitForExitAsync(cancellationToken);
            return;
        }
        try
        {
            using var process = Process.GetProcessById(ProcessId);
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (ArgumentException)
        {
            // already gone
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
