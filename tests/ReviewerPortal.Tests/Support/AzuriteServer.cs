using System.Diagnostics;
using System.Net.Sockets;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// A real Azure Storage emulator of a test's own: Azurite's blob service (npm package <c>azurite</c>, installed by
/// <c>npm ci</c> in tests/tools, which .ci/run does) on a free loopback port, its data in a temporary folder. It can be
/// stopped and started again on the same port and data, as a store that goes down and comes back.
/// </summary>
public sealed class AzuriteServer : IAsyncDisposable
{
    /// <summary>The emulator's well-known development account (public, documented by Azurite).</summary>
    public const string Account = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    public const string InstallHint = "Azurite needs Node.js with npm (then `npm ci` in tests/tools): apt-get install -y nodejs npm";

    private static readonly SemaphoreSlim Install = new(1, 1);
    private Process? _process;

    private AzuriteServer(int port, string location)
    {
        Port = port;
        Location = location;
    }

    public int Port { get; }
    public string Location { get; }

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={Account};AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{Port}/{Account};";

    /// <summary>tests/tools/node_modules/.bin/azurite-blob, after <c>npm ci</c> there when npm is installed; null without npm.</summary>
    public static async Task<string?> ExecutableAsync()
    {
        var tools = Path.Combine(TestPaths.Repo, "tests", "tools");
        var bin = Path.Combine(tools, "node_modules", ".bin", "azurite-blob");
        if (File.Exists(bin))
        {
            return bin;
        }
        var npm = TestPaths.FindOnPath("npm");
        if (npm is null || TestPaths.FindOnPath("node") is null)
        {
            return null;
        }
        await Install.WaitAsync();
        try
        {
            if (!File.Exists(bin))
            {
                var ci = Process.Start(new ProcessStartInfo(npm, ["ci", "--no-audit", "--no-fund"])
                {
                    WorkingDirectory = tools, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
                })!;
                var output = await ci.StandardOutput.ReadToEndAsync() + await ci.StandardError.ReadToEndAsync();
                await ci.WaitForExitAsync();
                if (ci.ExitCode != 0 || !File.Exists(bin))
                {
                    throw new InvalidOperationException($"npm ci in {tools} failed (exit {ci.ExitCode}): {output}");
                }
            }
            return bin;
        }
        finally
        {
            Install.Release();
        }
    }

    /// <summary>Starts one; null where Node.js/npm is not installed (see <see cref="InstallHint"/>).</summary>
    public static async Task<AzuriteServer?> StartAsync()
    {
        if (await ExecutableAsync() is null)
        {
            return null;
        }
        var server = new AzuriteServer(TestServers.LowFreePort(), TestServers.NewTempDirectory("azurite"));
        await server.StartAgainAsync();
        return server;
    }

    /// <summary>Starts the emulator (again) on the same port and data folder; answers once it accepts connections.</summary>
    public async Task StartAgainAsync()
    {
        var bin = await ExecutableAsync() ?? throw new InvalidOperationException(InstallHint);
        var process = TestServers.StartQuiet(new ProcessStartInfo(bin,
            ["--blobHost", "127.0.0.1", "--blobPort", Port.ToString(), "--location", Location, "--skipApiVersionCheck", "--loose", "--silent"]));
        _process = process;
        for (var i = 0; i < 600; i++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"azurite-blob exited ({process.ExitCode}) on port {Port}.");
            }
            if (await AcceptsAsync(Port))
            {
                return;
            }
            await Task.Delay(50); // the process is still starting (not an app timer)
        }
        Stop();
        throw new InvalidOperationException("azurite-blob did not start.");
    }

    /// <summary>
    /// Stops the emulator: the store is down. SIGTERM first, so it saves its metadata (its data stays in
    /// <see cref="Location"/>); killed if it has not exited within 10 s.
    /// </summary>
    public void Stop()
    {
        if (_process is { HasExited: false } process)
        {
            if (!OperatingSystem.IsWindows())
            {
                using var term = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString()]) { UseShellExecute = false });
                term?.WaitForExit(5_000);
            }
            if (!process.WaitForExit(10_000))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
        }
        _process?.Dispose();
        _process = null;
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        try
        {
            Directory.Delete(Location, recursive: true);
        }
        catch (IOException)
        {
        }
        return ValueTask.CompletedTask;
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
