using System.Diagnostics;
using System.Net.Http.Headers;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Load;

/// <summary>The app under load: its Release build, run as a separate process against a given Redis.</summary>
public sealed class AppProcess : IAsyncDisposable
{
    private Process? _process;

    private readonly IReadOnlyDictionary<string, string> _environment;

    private AppProcess(string dll, string redis, string dataPath, int port, IReadOnlyDictionary<string, string>? environment)
    {
        _environment = environment ?? new Dictionary<string, string>();
        Dll = dll;
        Redis = redis;
        DataPath = dataPath;
        Port = port;
    }

    public string Dll { get; }
    public string Redis { get; }
    public string DataPath { get; }
    public int Port { get; }
    public string BaseUrl => $"http://127.0.0.1:{Port}";
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <param name="environment">More settings for the app, as environment variables (<c>Dispatch__WebhookTimeout</c>).</param>
    /// <param name="publish">
    /// Publish the app (every static asset in its wwwroot, as deployed) instead of building it: the portal's pages need
    /// their scripts and styles, which a build output serves only in Development.
    /// </param>
    public static async Task<AppProcess> StartAsync(string repo, string redis, string? dataPath = null,
        IReadOnlyDictionary<string, string>? environment = null, bool publish = false)
    {
        var dll = publish ? await PublishAsync(repo) : await BuildAsync(repo);
        var app = new AppProcess(dll, redis, dataPath ?? Path.Combine(Path.GetTempPath(), "rp-load", Guid.NewGuid().ToString("N")), FreePort.Pick(),
            environment);
        await app.RestartAsync();
        return app;
    }

    private static async Task<string> BuildAsync(string repo)
    {
        var project = Path.Combine(repo, "src", "ReviewerPortal");
        var build = Process.Start(new ProcessStartInfo("dotnet", ["build", project, "-c", "Release", "--nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        await build.WaitForExitAsync();
        if (build.ExitCode != 0)
        {
            throw new InvalidOperationException("Release build of the app failed:\n" + await build.StandardOutput.ReadToEndAsync());
        }
        return Path.Combine(project, "bin", "Release", "net10.0", "ReviewerPortal.dll");
    }

    private static async Task<string> PublishAsync(string repo)
    {
        var output = Path.Combine(repo, "artifacts", "load-app");
        var publish = Process.Start(new ProcessStartInfo("dotnet",
            ["publish", Path.Combine(repo, "src", "ReviewerPortal"), "-c", "Release", "-o", output, "--nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var log = publish.StandardOutput.ReadToEndAsync();
        await publish.WaitForExitAsync();
        if (publish.ExitCode != 0)
        {
            throw new InvalidOperationException("Release publish of the app failed:\n" + await log);
        }
        return Path.Combine(output, "ReviewerPortal.dll");
    }

    public async Task RestartAsync()
    {
        var start = new ProcessStartInfo("dotnet", [Dll, "--urls", BaseUrl]) { WorkingDirectory = Path.GetDirectoryName(Dll)! };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Redis__Configuration"] = Redis;
        start.Environment["Storage__DataPath"] = DataPath;
        start.Environment["Demo__Enabled"] = "true";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        // The load tool drives one key far past the default request rate limits: lifted here, set again by the flood scenario.
        start.Environment["RateLimits__PerKey__PermitsPerSecond"] = "1000000";
        start.Environment["RateLimits__PerKey__Burst"] = "1000000";
        start.Environment["RateLimits__PerAccount__PermitsPerSecond"] = "1000000";
        start.Environment["RateLimits__PerAccount__Burst"] = "1000000";
        foreach (var (name, value) in _environment)
        {
            start.Environment[name] = value;
        }
        _process = ReviewerPortal.Tests.Support.TestServers.StartQuiet(start);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                if ((await http.GetAsync(BaseUrl + "/healthz")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
            }
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The app exited with {_process.ExitCode} at start.");
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("The app did not become healthy in 60 s.");
    }

    /// <summary>SIGKILL: no shutdown hooks, no flush.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: false);
            p.WaitForExit();
        }
    }

    /// <param name="token">The bearer token; null: an anonymous client (the same handler settings).</param>
    public HttpClient Client(string? token)
    {
        var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1000, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            BaseAddress = new Uri(BaseUrl),
            Timeout = TimeSpan.FromSeconds(90),
        };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        await Task.CompletedTask;
    }
}
