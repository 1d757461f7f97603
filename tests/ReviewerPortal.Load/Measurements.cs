using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace ReviewerPortal.Load;

/// <summary>Latency samples of one measured step (thread-safe).</summary>
public sealed class Recorder(string name)
{
    private readonly List<double> _ms = [];
    private long _errors;

    public string Name => name;
    public long Errors => Interlocked.Read(ref _errors);
    public int Count { get { lock (_ms) { return _ms.Count; } } }

    public void Add(TimeSpan elapsed)
    {
        lock (_ms)
        {
            _ms.Add(elapsed.TotalMilliseconds);
        }
    }

    public void Error() => Interlocked.Increment(ref _errors);

    public async Task<T> TimeAsync<T>(Func<Task<T>> step)
    {
        var started = Stopwatch.GetTimestamp();
        var result = await step();
        Add(Stopwatch.GetElapsedTime(started));
        return result;
    }

    public Row ToRow(TimeSpan duration, string? target = null)
    {
        double[] sorted;
        lock (_ms)
        {
            sorted = [.. _ms.Order()];
        }
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return new Row(name, sorted.Length, sorted.Length / duration.TotalSeconds, P(0.50), P(0.95), P(0.99),
            sorted.Length == 0 ? double.NaN : sorted[^1], Errors, target);
    }
}

public sealed record Row(string Step, long Count, double PerSecond, double P50, double P95, double P99, double Max, long Errors, string? Target);

public sealed class Report(string scenario)
{
    public string Scenario { get; } = scenario;
    public DateTimeOffset At { get; } = DateTimeOffset.UtcNow;
    public string Machine { get; } = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}";
    public List<Row> Rows { get; } = [];
    public Dictionary<string, string> Facts { get; } = [];

    public void Print()
    {
        Console.WriteLine();
        Console.WriteLine($"== {Scenario} · {At:yyyy-MM-dd HH:mm} UTC · {Machine}");
        if (Rows.Count > 0)
        {
            Console.WriteLine($"| {"step",-34} | {"count",7} | {"per s",9} | {"p50 ms",8} | {"p95 ms",8} | {"p99 ms",8} | {"max ms",8} | {"errors",6} | target");
            Console.WriteLine($"|{new string('-', 36)}|{new string('-', 9)}|{new string('-', 11)}|{new string('-', 10)}|{new string('-', 10)}|{new string('-', 10)}|{new string('-', 10)}|{new string('-', 8)}|-------");
            foreach (var r in Rows)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Step,-34} | {r.Count,7} | {r.PerSecond,9:F1} | {r.P50,8:F2} | {r.P95,8:F2} | {r.P99,8:F2} | {r.Max,8:F2} | {r.Errors,6} | {r.Target}"));
            }
        }
        foreach (var (key, value) in Facts)
        {
            Console.WriteLine($"  {key}: {value}");
        }
    }

    public async Task SaveAsync(string folder)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{Scenario}-{At:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(this, new JsonSerializerOptions
        {
            WriteIndented = true,
            // A step with no samples has NaN percentiles: written as "NaN" rather than failing the whole report.
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }));
        Console.WriteLine($"  saved {path}");
    }
}

/// <summary>A one-line live progress indicator on stderr.</summary>
public sealed class Progress(string label) : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private long _done;

    public void Tick() => Interlocked.Increment(ref _done);

    public Progress Start(TimeSpan duration)
    {
        var started = Stopwatch.StartNew();
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Console.Error.Write($"\r  {label}: {Interlocked.Read(ref _done),8} done · {started.Elapsed.TotalSeconds,5:F1}/{duration.TotalSeconds:F0} s   ");
                try { await Task.Delay(500, _stop.Token); } catch (OperationCanceledException) { }
            }
        });
        return this;
    }

    public void Dispose()
    {
        _stop.Cancel();
        Console.Error.WriteLine();
    }
}

/// <summary>The audit outbox after a fault: transitions whose commit died with a process wait there for the drain.</summary>
public static class AuditOutbox
{
    /// <summary>Waits (at most 2 min) until the tenants' audit outboxes are empty; answers how long that took.</summary>
    public static async Task<TimeSpan> WaitDrainedAsync(string redis, params string[] tenants)
    {
        var clock = Stopwatch.StartNew();
        await using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis);
        var db = connection.GetDatabase();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            long waiting = 0;
            foreach (var tenant in tenants)
            {
                waiting += await db.ListLengthAsync(ReviewerPortal.Infrastructure.Redis.RedisKeys.AuditOutbox(tenant));
            }
            if (waiting == 0)
            {
                break;
            }
            await Task.Delay(500);
        }
        return clock.Elapsed;
    }
}
