using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Receipts;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Audit;

/// <summary>What a checkpoint states: the tenant's chain head <c>{sequence, hash}</c> at <c>at</c>, signed by key <c>kid</c>.</summary>
public sealed record AuditCheckpointClaims(string Tenant, long Sequence, string Hash, DateTimeOffset At, string Kid);

/// <summary>A tenant's verified checkpoints, oldest first, and the state of its checkpoint log (<see cref="Ok"/>, …).</summary>
public sealed record CheckpointReading(IReadOnlyList<AuditCheckpointClaims> Checkpoints, string Log, string? Problem)
{
    public const string Ok = "ok";
    public const string Unreachable = "unreachable";
    public const string Tampered = "tampered";
}

/// <summary>
/// Signed checkpoints of each tenant's audit chain, kept outside the database: every <see cref="AuditOptions.CheckpointEvery"/>
/// entries and every <see cref="AuditOptions.CheckpointInterval"/> while the history grows, the head is signed with the
/// tenant's receipt key (ECDSA P-256, like receipts, so the published keys verify it), stored as the tenant's latest in
/// Redis and appended to the tenant's log in the checkpoint store (<see cref="IAuditCheckpointStore"/>: the file
/// <c>{CheckpointPath}/{tenant}.jsonl</c> by default, or an append blob in Azure Blob Storage). A tenant's first keyed
/// entry is checkpointed at once, so a downgrade of the whole keyed history is caught too.
/// <para>
/// Outbox: a checkpoint is stored in Redis together with a pending copy, and only the push (right away, then every
/// <see cref="CheckpointStoreOptions.RetryInterval"/> while the store does not take it) moves it to the log; nothing a
/// decision waits for touches the store. Checkpoints still waiting are logged and listed on <c>/healthz</c>, and count
/// for verification from Redis meanwhile. Redis also remembers the highest sequence pushed and when the app created
/// each object-store log, so a log that lost checkpoints or was deleted and written again is reported as tampered.
/// </para>
/// <para>
/// Several instances: the latest checkpoint in Redis only moves forward, and a time-triggered one only once per
/// interval, in one script (<see cref="Store"/>), so instances neither repeat nor reorder it; the one that wins appends
/// it to its log file (the log may then be in any order; <see cref="ReadVerifiedAsync"/> sorts it).
/// </para>
/// </summary>
public sealed partial class AuditCheckpoints(
    RedisConnection redis,
    ReceiptSigner signer,
    IDbContextFactory<AppDbContext> dbFactory,
    TenantStore tenants,
    IOptions<AuditOptions> options,
    IAuditCheckpointStore store,
    AuditChainKey chainKey,
    TimeProvider time,
    ILogger<AuditCheckpoints> logger) : BackgroundService
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Stores a checkpoint as the latest when it is past the stored one, and (for a time-triggered one) at least
    /// ARGV[4] ms after it, with a pending copy for the checkpoint store. KEYS[1] the tenant's checkpoint hash, KEYS[2]
    /// its pending checkpoints (sequence → signed JSON); ARGV: sequence, at (unix ms), signed JSON, min age (ms).
    /// </summary>
    private const string Store = """
        local s = redis.call('HGET', KEYS[1], 'seq')
        if s then
          if tonumber(ARGV[1]) <= tonumber(s) then return 0 end
          local at = tonumber(redis.call('HGET', KEYS[1], 'at'))
          if tonumber(ARGV[2]) - at < tonumber(ARGV[4]) then return 0 end
        end
        redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'at', ARGV[2], 'checkpoint', ARGV[3])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        return 1
        """;

    /// <summary>
    /// A pending checkpoint reached the store: drops it from KEYS[2] and raises field ARGV[3] ('pushed|{store}') in
    /// KEYS[1] to its sequence; ARGV[2] (when not empty) is the creation time of the log the push created, kept in field
    /// ARGV[4] ('logCreated|{store}') unless one is known. Per store, so a deployment moved to another store with the
    /// same Redis is not taken for a tampered log.
    /// </summary>
    private const string Pushed = """
        redis.call('HDEL', KEYS[2], ARGV[1])
        local p = redis.call('HGET', KEYS[1], ARGV[3])
        if not p or tonumber(ARGV[1]) > tonumber(p) then redis.call('HSET', KEYS[1], ARGV[3], ARGV[1]) end
        if ARGV[2] ~= '' then redis.call('HSETNX', KEYS[1], ARGV[4], ARGV[2]) end
        return 1
        """;

    private string PushedField => "pushed|" + store.Describe("");
    private string CreatedField => "logCreated|" + store.Describe("");

    private readonly ConcurrentDictionary<string, TenantState> _states = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _due = new(0);
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly SemaphoreSlim _push = new(0);
    private readonly ConcurrentDictionary<string, int> _waiting = new(StringComparer.Ordinal);
    private volatile string? _lastPushError;

    /// <summary>Checkpoints this instance last saw waiting for the store, and the store's last error (null once they all went).</summary>
    public (int Waiting, string? LastError) PushState => (_waiting.Values.Sum(), _waiting.Values.Sum() > 0 ? _lastPushError : null);

    /// <summary>The writer committed <paramref name="entries"/> rows of the tenant, the newest at <paramref name="sequence"/>.</summary>
    public void HeadAdvanced(string tenant, long sequence, string hash, int entries)
    {
        var state = _states.GetOrAdd(tenant, _ => new TenantState());
        lock (state)
        {
            if (sequence > state.HeadSequence)
            {
                state.HeadSequence = sequence;
                state.HeadHash = hash;
            }
            state.Written += entries;
        }
        _due.Release();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.WhenAll(CountLoopAsync(stoppingToken), TimeLoopAsync(stoppingToken), PushLoopAsync(stoppingToken), RetryTickAsync(stoppingToken));
    }

    /// <summary>Checkpoints a tenant that has none yet, or whose writes since the last one reached CheckpointEvery.</summary>
    private async Task CountLoopAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _due.WaitAsync(stoppingToken);
                while (_due.CurrentCount > 0 && _due.Wait(0))
                {
                    // Coalesce: one pass serves every signal given so far.
                }
                foreach (var (tenant, state) in _states)
                {
                    long sequence;
                    string? hash;
                    long written;
                    lock (state)
                    {
                        (sequence, hash, written) = (state.HeadSequence, state.HeadHash, state.Written);
                    }
                    if (hash is null || sequence <= state.CheckpointSequence)
                    {
                        continue;
                    }
                    var latest = state.Known ? null : await LatestAsync(tenant);
                    if (!state.Known)
                    {
                        state.Remember(latest);
                    }
                    if (sequence <= state.CheckpointSequence)
                    {
                        continue;
                    }
                    if (state.CheckpointSequence > 0 && written - state.WrittenAtCheckpoint < options.Value.CheckpointEvery)
                    {
                        continue;
                    }
                    await TryWriteAsync(tenant, sequence, hash, TimeSpan.Zero, state, written);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Audit checkpoint after new entries failed; tried again with the next entries");
            }
        }
    }

    /// <summary>Every tick, checkpoints each tenant whose chain moved past its latest checkpoint at least CheckpointInterval ago.</summary>
    private async Task TimeLoopAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.CheckpointInterval;
        var tick = interval < TimeSpan.FromMinutes(5) ? interval / 5 : TimeSpan.FromMinutes(1);
        using var timer = new PeriodicTimer(tick, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await CheckpointDueByTimeAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogError(ex, "Audit checkpoint by time failed; tried again at the next tick");
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pass of the time trigger over every tenant (the registered ones and those this instance wrote for).</summary>
    internal async Task CheckpointDueByTimeAsync(CancellationToken cancellationToken)
    {
        var interval = options.Value.CheckpointInterval;
        var names = (await tenants.ListAsync()).Concat(_states.Keys).Distinct(StringComparer.Ordinal).ToList();
        foreach (var tenant in names)
        {
            var latest = await LatestAsync(tenant);
            if (latest is not null && time.GetUtcNow() - latest.At < interval)
            {
                continue;
            }
            var head = await AuditLog.ReadHeadAsync(dbFactory, tenant, cancellationToken);
            if (head is null || (latest is not null && head.Sequence <= latest.Sequence))
            {
                continue;
            }
            var state = _states.GetOrAdd(tenant, _ => new TenantState());
            long written;
            lock (state)
            {
                written = state.Written;
            }
            state.Remember(latest);
            await TryWriteAsync(tenant, head.Sequence, head.Hash, interval, state, written);
        }
    }

    /// <summary>Signs the head and stores it, unless another instance got there first; appends it to the log when it won.</summary>
    private async Task TryWriteAsync(string tenant, long sequence, string hash, TimeSpan minAge, TenantState state, long written)
    {
        await _writing.WaitAsync();
        try
        {
            var at = time.GetUtcNow();
            var signed = await signer.SignAsync(tenant,
                kid => JsonSerializer.Serialize(new AuditCheckpointClaims(tenant, sequence, hash, at, kid), Json));
            var line = JsonSerializer.Serialize(signed, Json);
            var stored = (long)await redis.Database.ScriptEvaluateAsync(Store,
                [RedisKeys.AuditCheckpoint(tenant), RedisKeys.AuditCheckpointPending(tenant)],
                [sequence, at.ToUnixTimeMilliseconds(), line, (long)minAge.TotalMilliseconds]);
            if (stored != 1)
            {
                // Another instance checkpointed meanwhile: count from its checkpoint.
                state.Remember(await LatestAsync(tenant), written);
                return;
            }
            state.Remember(new AuditCheckpointClaims(tenant, sequence, hash, at, signed.Kid), written);
            _push.Release();
            logger.LogInformation("Audit checkpoint of {Tenant} at {Sequence}", tenant, sequence);
        }
        finally
        {
            _writing.Release();
        }
    }
}
