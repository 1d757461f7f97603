using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace ReviewerPortal.Load;

/// <summary>What <c>GET /diagnostics/runtime</c> answers (the app runs with <c>Diagnostics__Enabled=true</c>).</summary>
public sealed record RuntimeSample(long AllocatedBytes, int Gen0Collections, int Gen1Collections, int Gen2Collections,
    long HeapSizeBytes, long WorkingSetBytes, double TotalProcessorMs)
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    /// <summary>The app's figures now; null when the endpoint is off. <paramref name="collect"/> runs a full GC first.</summary>
    public static async Task<RuntimeSample?> ReadAsync(AppProcess app, bool collect = false)
    {
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl), Timeout = TimeSpan.FromSeconds(30) };
        var response = await http.GetAsync($"/diagnostics/runtime{(collect ? "?collect=true" : "")}");
        return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<RuntimeSample>(Web) : null;
    }
}

/// <summary>The CPU time of a process from <c>/proc/&lt;pid&gt;/stat</c> (utime + stime, in USER_HZ ticks of 10 ms).</summary>
public static class ProcStat
{
    private const double MsPerTick = 1000.0 / 100; // USER_HZ is 100 on Linux whatever the kernel's HZ

    public static double? CpuMs(int? pid)
    {
        if (pid is null || !File.Exists($"/proc/{pid}/stat"))
        {
            return null;
        }
        // pid (comm) state ppid … utime stime …: fields 14 and 15; comm may hold spaces, so count after the last ')'.
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * MsPerTick;
    }
}

/// <summary>What one measured window cost the app: CPU, Redis commands (by name), allocations and collections.</summary>
/// <param name="Commands">Redis commands by name in the window; null where the server keeps no <c>INFO commandstats</c>.</param>
public sealed record WindowCost(long Calls, TimeSpan Elapsed, double? CpuMs, IReadOnlyDictionary<string, long>? Commands,
    long? AllocatedBytes, int? Gen0, int? Gen1, int? Gen2, RuntimeSample? End)
{
    public double? CommandsPerCall => Commands is null || Calls == 0 ? null : Commands.Values.Sum() / (double)Calls;
    public double? CpuMsPerCall => CpuMs is { } cpu && Calls > 0 ? cpu / Calls : null;
    public double? AllocatedPerCall => AllocatedBytes is { } bytes && Calls > 0 ? bytes / (double)Calls : null;

    /// <summary><c>evalsha 4.0, get 3.0, …</c>: the commands per call, most first.</summary>
    public string Breakdown(int top = 12) => Commands is null ? "" : string.Join(", ", Commands.OrderByDescending(c => c.Value).Take(top)
        .Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Key} {c.Value / (double)Math.Max(1, Calls):F2}")));
}

/// <summary>
/// Samples the app around a measured window: its CPU time (<c>/proc/&lt;pid&gt;/stat</c>), the Redis server's
/// <c>INFO commandstats</c> and the app's <c>/diagnostics/runtime</c>; <see cref="StopAsync"/> answers the deltas.
/// </summary>
public sealed class CycleSampler(AppProcess app, string redis)
{
    private double? _cpu;
    private Dictionary<string, long> _commands = [];
    private RuntimeSample? _runtime;
    private long _started;

    public WindowCost? Cost { get; private set; }

    public async Task StartAsync()
    {
        _commands = await Scenarios.CommandStatsAsync(redis);
        _runtime = await RuntimeSample.ReadAsync(app);
        _cpu = ProcStat.CpuMs(app.Pid);
        _started = Stopwatch.GetTimestamp();
    }

    /// <param name="calls">What the window did (cycles, requests), to divide by.</param>
    public async Task<WindowCost> StopAsync(long calls)
    {
        var elapsed = Stopwatch.GetElapsedTime(_started);
        var cpu = ProcStat.CpuMs(app.Pid);
        var runtime = await RuntimeSample.ReadAsync(app);
        var commands = await Scenarios.CommandStatsAsync(redis);
        var delta = commands.Select(c => (c.Key, Value: c.Value - _commands.GetValueOrDefault(c.Key)))
            // The sampler's own INFO calls are not the app's.
            .Select(c => c.Key == "info" ? (c.Key, Value: c.Value - 1) : c)
            .Where(c => c.Value > 0).ToDictionary(c => c.Key, c => c.Value);
        Cost = new WindowCost(calls, elapsed, cpu - _cpu, commands.Count == 0 ? null : delta,
            runtime?.AllocatedBytes - _runtime?.AllocatedBytes,
            runtime?.Gen0Collections - _runtime?.Gen0Collections,
            runtime?.Gen1Collections - _runtime?.Gen1Collections,
            runtime?.Gen2Collections - _runtime?.Gen2Collections,
            runtime);
        return Cost;
    }
}
