using System.Diagnostics;
using System.Text;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Client;

/// <summary>
/// The Python (clients/python) and TypeScript (clients/typescript) client suites, run against the built app so that
/// <c>dotnet test</c> stays the one test command. Each suite starts the app itself (embedded Garnet, a temporary data
/// folder, demo data). Reported as skipped, naming what to install, where Debian's Python packages or Node and the
/// client's node_modules are missing. With <c>RP_CLIENT_RESULTS</c> set, each suite writes JUnit XML there (CI counts it).
/// </summary>
public sealed class ClientLibrariesTests
{
    private const string Python = "/usr/bin/python3";
    private static readonly TimeSpan SuiteTimeout = TimeSpan.FromMinutes(20);

    [SkippableFact]
    public async Task Python_client_suite_passes_against_the_app()
    {
        Skip.IfNot(File.Exists(Python) && (await RunAsync(Python, ["-c", "import httpx, cryptography, pytest"], TestPaths.Repo, TimeSpan.FromMinutes(1))).ExitCode == 0,
            "Debian's Python packages are needed: apt-get install -y python3-httpx python3-cryptography python3-pytest");
        List<string> args = ["-m", "pytest", "clients/python", "-q", "-p", "no:cacheprovider"];
        if (Environment.GetEnvironmentVariable("RP_CLIENT_RESULTS") is { Length: > 0 } results)
        {
            args.Add($"--junitxml={Path.Combine(results, "python-junit.xml")}");
        }
        var run = await RunAsync(Python, args, TestPaths.Repo, SuiteTimeout);
        Assert.True(run.ExitCode == 0, $"The Python client suite failed (exit {run.ExitCode}):\n{run.Output}");
    }

    [SkippableFact]
    public async Task TypeScript_client_suite_passes_against_the_app()
    {
        var folder = Path.Combine(TestPaths.Repo, "clients", "typescript");
        var node = TestPaths.FindOnPath("node");
        var npm = TestPaths.FindOnPath("npm");
        Skip.If(node is null || npm is null, "Node 20 or later is needed (with npm), then `npm ci` in clients/typescript");
        Skip.IfNot(Directory.Exists(Path.Combine(folder, "node_modules")), "Run `npm ci` in clients/typescript first");
        var env = new Dictionary<string, string>();
        if (Environment.GetEnvironmentVariable("RP_CLIENT_RESULTS") is { Length: > 0 } results)
        {
            env["RP_JUNIT_FILE"] = Path.Combine(results, "typescript-junit.xml");
        }
        var run = await RunAsync(npm!, ["test"], folder, SuiteTimeout, env);
        Assert.True(run.ExitCode == 0, $"The TypeScript client suite failed (exit {run.ExitCode}):\n{run.Output}");
    }

    /// <summary>The app built beside these tests: src/ReviewerPortal/bin/{same configuration}/net10.0/ReviewerPortal.dll.</summary>
    private static string AppDll()
    {
        var parts = AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var bin = Array.LastIndexOf(parts, "bin");
        var configuration = bin >= 0 && bin + 1 < parts.Length ? parts[bin + 1] : "Debug";
        var dll = Path.Combine(TestPaths.Repo, "src", "ReviewerPortal", "bin", configuration, "net10.0", "ReviewerPortal.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build src/ReviewerPortal");
        return dll;
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, string workingDirectory,
        TimeSpan timeout, IReadOnlyDictionary<string, string>? env = null)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["REVIEWERPORTAL_DLL"] = AppDll();
        start.Environment.Remove("ASPNETCORE_URLS");
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            lock (output)
            {
                output.AppendLine($"-- killed after {timeout}");
            }
            return (-1, Tail(output));
        }
        process.WaitForExit(); // drains the redirected output
        lock (output)
        {
            return (process.ExitCode, Tail(output));
        }
    }

    private static string Tail(StringBuilder output) =>
        output.Length <= 30_000 ? output.ToString() : "…" + output.ToString(output.Length - 30_000, 30_000);
}
