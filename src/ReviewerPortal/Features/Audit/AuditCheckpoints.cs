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
using ReviewerPortal.Infrastructure.Storage;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Audit;

/// <summary>What a checkpoint states: the tenant's chain head <c>{sequence, hash}</c> at <c>at</c>, signed by key <c>kid</c>.</summary>
public sealed record AuditCheckpointClaims(string Tenant, long Sequence, string Hash, DateTimeOffset At, string Kid);

/// <summary>
/// Signed checkpoints of each tenant's audit chain, kept outside the database: every <see cref="AuditOptions.CheckpointEvery"/>
/// entries and every <see cref="AuditOptions.CheckpointInterval"/> while the history grows, the head is signed with the
/// tenant's receipt key (ECDSA P-256, like receipts, so the published keys verify it), stored as the tenant's latest in
/// Redis and appended to <c>{CheckpointPath}/{tenant}.jsonl</c>. A tenant's first keyed entry is checkpointed at once,
/// so a downgrade of the whole keyed history is caught too.
/// <para>
/// Several instances: the latest checkpoint in Redis only moves forward, and a time-triggered one only once per
/// interval, in one script (<see cref="Store"/>), so instances neither repeat nor reorder it; the one that wins appends
/// it to its log file (the log may then be in any order; <see cref="ReadVerifiedAsync"/> sorts it).
/// </para>
/// </summary>
public sealed class AuditCheckpoints(
    RedisConnection redis,
    ReceiptSigner signer,
    IDbContextFactory<AppDbContext> dbFactory,
    TenantStore tenants,
    IOptions<AuditOptions> options,
    IOptions<StorageOptions> storage,
    IHostEnvironment environment,
    TimeProvider time,
    ILogger<AuditCheckpoints> logger) : BackgroundService
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// Stores a checkpoint as the latest when it is past the stored one, and (for a time-triggered one) at least
    /// ARGV[4] ms after it. KEYS[1] the tenant's checkpoint hash; ARGV: sequence, at (unix ms), signed JSON, min age (ms).
    /// </summary>
    private const string Store = """
        local s = redis.call('HGET', KEYS[1], 'seq')
        if s then
          if tonumber(ARGV[1]) <= tonumber(s) then return 0 end
          local at = tonumber(redis.call('HGET', KEYS[1], 'at'))
          if tonumber(ARGV[2]) - at < tonumber(ARGV[4]) then return 0 end
        end
        redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'at', ARGV[2], 'checkpoint', ARGV[3])
        return 1
        """;

    private readonly ConcurrentDictionary<string, TenantState> _states = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _due = new(0);
    private readonly SemaphoreSlim _writing = new(1, 1);

    public string Folder => options.Value.ResolveCheckpointPath(storage.Value, environment.ContentRootPath);

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
        await Task.WhenAll(CountLoopAsync(stoppingToken), TimeLoopAsync(stoppingToken));
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
            var stored = (long)await redis.Database.ScriptEvaluateAsync(Store, [RedisKeys.AuditCheckpoint(tenant)],
                [sequence, at.ToUnixTimeMilliseconds(), line, (long)minAge.TotalMilliseconds]);
            if (stored != 1)
            {
                // Another instance checkpointed meanwhile: count from its checkpoint.
                state.Remember(await LatestAsync(tenant), written);
                return;
            }
            state.Remember(new AuditCheckpointClaims(tenant, sequence, hash, at, signed.Kid), written);
            try
            {
                var file = LogFile(tenant);
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                await File.AppendAllTextAsync(file, line + "\n");
            }
            catch (IOException ex)
            {
                logger.LogError(ex, "Audit checkpoint {Sequence} of {Tenant} is in Redis but could not be appended to the log", sequence, tenant);
            }
            logger.LogInformation("Audit checkpoint of {Tenant} at {Sequence}", tenant, sequence);
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>The latest checkpoint in Redis (its signature not checked: for scheduling only).</summary>
    private async Task<AuditCheckpointClaims?> LatestAsync(string tenant)
    {
        var line = (string?)await redis.Database.HashGetAsync(RedisKeys.AuditCheckpoint(tenant), "checkpoint");
        return line is null ? null : Claims(JsonSerializer.Deserialize<ApprovalReceipt>(line, Json));
    }

    /// <summary>
    /// Every checkpoint of the tenant whose signature verifies with one of its published keys and that names the tenant,
    /// from the log file and Redis, one per sequence, oldest first. One that does not verify is logged and left out.
    /// </summary>
    public async Task<IReadOnlyList<AuditCheckpointClaims>> ReadVerifiedAsync(string tenant, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        var file = LogFile(tenant);
        if (File.Exists(file))
        {
            lines.AddRange((await File.ReadAllLinesAsync(file, cancellationToken)).Where(l => !string.IsNullOrWhiteSpace(l)));
        }
        if ((string?)await redis.Database.HashGetAsync(RedisKeys.AuditCheckpoint(tenant), "checkpoint") is { } latest)
        {
            lines.Add(latest);
        }
        if (lines.Count == 0)
        {
            return [];
        }
        var keys = (await signer.PublicKeysAsync(tenant)).ToDictionary(k => k.Kid, StringComparer.Ordinal);
        var verified = new SortedDictionary<long, AuditCheckpointClaims>();
        var rejected = 0;
        foreach (var line in lines)
        {
            if (Verify(line, tenant, keys) is { } claims)
            {
                verified.TryAdd(claims.Sequence, claims);
            }
            else
            {
                rejected++;
            }
        }
        if (rejected > 0)
        {
            logger.LogWarning("{Count} audit checkpoints of {Tenant} do not verify with its keys and were not used", rejected, tenant);
        }
        return [.. verified.Values];
    }

    private static AuditCheckpointClaims? Verify(string line, string tenant, Dictionary<string, PublicSigningKey> keys)
    {
        try
        {
            var signed = JsonSerializer.Deserialize<ApprovalReceipt>(line, Json);
            if (signed is null || !keys.TryGetValue(signed.Kid, out var key))
            {
                return null;
            }
            using var ecdsa = ECDsa.Create();
            ecdsa.ImportSubjectPublicKeyInfo(Convert.FromBase64String(key.PublicKey), out _);
            var padded = signed.Signature.Replace('-', '+').Replace('_', '/');
            var signature = Convert.FromBase64String(padded + new string('=', (4 - padded.Length % 4) % 4));
            if (!ecdsa.VerifyData(Encoding.UTF8.GetBytes(signed.Payload), signature, HashAlgorithmName.SHA256))
            {
                return null;
            }
            var claims = Claims(signed);
            return claims is not null && claims.Tenant == tenant && claims.Kid == signed.Kid ? claims : null;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or CryptographicException)
        {
            return null;
        }
    }

    private static AuditCheckpointClaims? Claims(ApprovalReceipt? signed) =>
        signed is null ? null : JsonSerializer.Deserialize<AuditCheckpointClaims>(signed.Payload, Json);

    private string LogFile(string tenant) => Path.Combine(Folder, Uri.EscapeDataString(tenant) + ".jsonl");

    private sealed class TenantState
    {
        public long HeadSequence;
        public string? HeadHash;
        public long Written;
        public bool Known;
        public long CheckpointSequence;
        public long WrittenAtCheckpoint;

        /// <summary>The latest checkpoint as now known; <paramref name="written"/>: this instance's count it covers.</summary>
        public void Remember(AuditCheckpointClaims? latest, long? written = null)
        {
            lock (this)
            {
                Known = true;
                if (latest is not null && latest.Sequence >= CheckpointSequence)
                {
                    CheckpointSequence = latest.Sequence;
                    if (written is { } w)
                    {
                        WrittenAtCheckpoint = Math.Max(WrittenAtCheckpoint, w);
                    }
                }
            }
        }
    }
}
