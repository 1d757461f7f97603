using System.Globalization;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>What the audit writer waits for after a batch's Redis steps: <c>auto</c> uses what the server offers, <c>off</c> nothing.</summary>
public enum DurabilityWait { Auto, Off }

/// <summary>
/// Makes a batch's Redis writes durable before its audit rows commit (and so before anyone is answered), where the
/// server supports it: <c>WAITAOF 1 0</c> when the server writes an append-only log and knows the command (Redis 7.2+),
/// <c>COMMITAOF</c> on Garnet (it returns once its append-only log is committed: the embedded server's barrier),
/// <c>WAIT n</c> when it has n replicas; on a cluster, on every primary. What the server offers is read once at start
/// (INFO, CONFIG GET, harmless probes); a server that answers differently or not at all simply gets no wait. A wait that comes back short is logged and
/// counted, never a failure: the transitions already happened. The same look at start lists the settings that can
/// lose acknowledged writes (no AOF, <c>appendfsync no</c>, an eviction policy), shown on <c>/healthz</c>.
/// </summary>
public sealed class RedisDurability(RedisConnection redis, IOptions<RedisOptions> options, ILogger<RedisDurability> logger)
{
    private long _waits;
    private long _shortfalls;

    /// <summary>The writer waits for the local append-only log (<c>WAITAOF 1 0</c>).</summary>
    public bool WaitsForAof { get; private set; }

    /// <summary>The writer has the server commit its append-only log (<c>COMMITAOF</c>, Garnet).</summary>
    public bool CommitsAof { get; private set; }

    /// <summary>The writer waits for this many replicas (<c>WAIT n</c>); 0 = none.</summary>
    public int Replicas { get; private set; }

    /// <summary>Settings of the configured Redis that can lose acknowledged writes.</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    /// <summary>"off" (configured so), "none" (the server offers nothing), or what is waited for: "waitaof", "commitaof", "wait 2", "waitaof+wait 2".</summary>
    public string Mode { get; private set; } = "none";

    /// <summary>Waits done since start.</summary>
    public long Waits => Interlocked.Read(ref _waits);

    /// <summary>Waits that came back with fewer acknowledgements than asked (or failed).</summary>
    public long Shortfalls => Interlocked.Read(ref _shortfalls);

    private TimeSpan Timeout => options.Value.DurabilityWaitTimeout;

    /// <summary>Reads once what the server offers; never fails (an unknown command counts as "not offered").</summary>
    internal async Task DetectAsync()
    {
        var persistence = await InfoAsync("persistence");
        var replication = await InfoAsync("replication");
        var memory = await InfoAsync("memory");
        var aof = persistence.GetValueOrDefault("aof_enabled");
        var policy = memory.GetValueOrDefault("maxmemory_policy") ?? await ConfigAsync("maxmemory-policy");
        var fsync = await ConfigAsync("appendfsync");

        if (redis.Mode == "configured")
        {
            List<string> warnings = [];
            if (aof == "0")
            {
                warnings.Add("Redis runs without AOF (appendonly no): a restart loses acknowledged approvals; set appendonly yes.");
            }
            if (aof == "1" && fsync == "no")
            {
                warnings.Add("Redis runs with appendfsync no: a crash can lose acknowledged approvals; use everysec or always.");
            }
            if (policy is not null && policy != "noeviction")
            {
                warnings.Add($"Redis evicts keys under memory pressure (maxmemory-policy {policy}): approvals can vanish; use noeviction.");
            }
            Warnings = warnings;
            foreach (var warning in warnings)
            {
                logger.LogWarning("{Warning}", warning);
            }
        }

        if (options.Value.WaitForDurability == DurabilityWait.Off)
        {
            Mode = "off";
            return;
        }
        WaitsForAof = aof == "1" && await ProbeAsync("WAITAOF", 0, 0, 1);
        // Garnet has no WAITAOF (though it reports a Redis 7.4 version) but COMMITAOF, which answers once its log is committed.
        CommitsAof = !WaitsForAof && await ProbeAsync("COMMITAOF");
        Replicas = replication.GetValueOrDefault("role") == "master"
                   && int.TryParse(replication.GetValueOrDefault("connected_slaves"), CultureInfo.InvariantCulture, out var n) ? n : 0;
        var aofMode = WaitsForAof ? "waitaof" : CommitsAof ? "commitaof" : null;
        Mode = (aofMode, Replicas) switch
        {
            (null, 0) => "none",
            (not null, 0) => aofMode,
            (null, var r) => $"wait {r}",
            (not null, var r) => $"{aofMode}+wait {r}",
        };
        logger.LogInformation("Audit commits wait for Redis durability: {Mode}", Mode);
    }

    /// <summary>After a batch's Redis steps: waits for what the server offers, up to the timeout; a short answer is logged and counted.</summary>
    public async Task WaitAsync()
    {
        if (!WaitsForAof && !CommitsAof && Replicas == 0)
        {
            return;
        }
        var timeout = (long)Timeout.TotalMilliseconds;
        // Each primary that may have taken a write of the batch (one, unless this is a cluster), on its own connection:
        // WAITAOF and WAIT speak for the writes made on the connection they are sent on.
        var primaries = redis.Multiplexer.GetServers().Where(s => s.IsConnected && !s.IsReplica).ToList();
        try
        {
            await Task.WhenAll(primaries.Select(async server =>
            {
                if (WaitsForAof)
                {
                    var acks = (RedisResult[])(await server.ExecuteAsync("WAITAOF", 1, 0, timeout))!;
                    Interlocked.Increment(ref _waits);
                    if ((long)acks[0] < 1)
                    {
                        Short("WAITAOF 1 0", 1, (long)acks[0]);
                    }
                }
                else if (CommitsAof)
                {
                    await server.ExecuteAsync("COMMITAOF");
                    Interlocked.Increment(ref _waits);
                }
                if (Replicas > 0)
                {
                    var acks = (long)await server.ExecuteAsync("WAIT", Replicas, timeout);
                    Interlocked.Increment(ref _waits);
                    if (acks < Replicas)
                    {
                        Short($"WAIT {Replicas}", Replicas, acks);
                    }
                }
            }));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidCastException)
        {
            Interlocked.Increment(ref _shortfalls);
            logger.LogWarning(ex, "Redis durability wait failed; the batch's transitions stand");
        }
    }

    private void Short(string command, long asked, long got)
    {
        Interlocked.Increment(ref _shortfalls);
        logger.LogWarning("{Command} got {Got} of {Asked} acknowledgements within {Timeout}; the batch's transitions stand",
            command, got, asked, Timeout);
    }

    private async Task<Dictionary<string, string>> InfoAsync(string section)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            var text = (string?)await redis.Database.ExecuteAsync("INFO", section);
            foreach (var line in (text ?? "").Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var colon = line.IndexOf(':');
                if (colon > 0 && !line.StartsWith('#'))
                {
                    fields[line[..colon]] = line[(colon + 1)..];
                }
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidCastException or ArgumentException)
        {
            logger.LogDebug(ex, "INFO {Section} not answered", section);
        }
        return fields;
    }

    private async Task<string?> ConfigAsync(string name)
    {
        try
        {
            var reply = await redis.Database.ExecuteAsync("CONFIG", "GET", name);
            return reply.Resp2Type == ResultType.Array && reply.Length >= 2 ? (string?)reply[1] : null;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or InvalidCastException or ArgumentException)
        {
            logger.LogDebug(ex, "CONFIG GET {Name} not answered", name);
            return null;
        }
    }

    private async Task<bool> ProbeAsync(string command, params object[] args)
    {
        try
        {
            await redis.Database.ExecuteAsync(command, args);
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogDebug(ex, "{Command} not offered", command);
            return false;
        }
    }
}
