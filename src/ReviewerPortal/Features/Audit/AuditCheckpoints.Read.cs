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

public sealed partial class AuditCheckpoints
{
    /// <summary>The latest checkpoint in Redis (its signature not checked: for scheduling only).</summary>
    private async Task<AuditCheckpointClaims?> LatestAsync(string tenant)
    {
        var line = (string?)await redis.Database.HashGetAsync(RedisKeys.AuditCheckpoint(tenant), "checkpoint");
        return line is null ? null : Claims(JsonSerializer.Deserialize<ApprovalReceipt>(line, Json));
    }

    /// <summary>
    /// Every checkpoint of the tenant whose signature verifies with one of its published keys and that names the tenant,
    /// from its log in the checkpoint store and from Redis, one per sequence, oldest first.
    /// </summary>
    public async Task<IReadOnlyList<AuditCheckpointClaims>> ReadVerifiedAsync(string tenant, CancellationToken cancellationToken) =>
        (await ReadAsync(tenant, cancellationToken)).Checkpoints;

    /// <summary>
    /// The tenant's verified checkpoints (see <see cref="ReadVerifiedAsync"/>) and the state of its log: <c>ok</c>,
    /// <c>unreachable</c> (the store did not answer: only Redis's checkpoints are known) or <c>tampered</c> (a line that
    /// does not verify, a log created at another time than the one the app created, or a log without a checkpoint the
    /// app appended to it). A line in Redis that does not verify is logged and left out.
    /// </summary>
    public async Task<CheckpointReading> ReadAsync(string tenant, CancellationToken cancellationToken)
    {
        var db = redis.Database;
        var known = await db.HashGetAsync(RedisKeys.AuditCheckpoint(tenant), ["checkpoint", PushedField, CreatedField]);
        var fromRedis = (await db.HashValuesAsync(RedisKeys.AuditCheckpointPending(tenant))).Select(v => (string)v!).ToList();
        if ((string?)known[0] is { } latest)
        {
            fromRedis.Add(latest);
        }
        var state = CheckpointReading.Ok;
        string? problem = null;
        CheckpointLog? log = null;
        try
        {
            log = await store.ReadAsync(tenant, cancellationToken);
        }
        catch (CheckpointStoreUnavailableException ex)
        {
            state = CheckpointReading.Unreachable;
            problem = $"the checkpoint store did not answer ({ex.Message})";
        }
        if (log is null or { Lines.Count: 0 } && fromRedis.Count == 0 && known[1].IsNull)
        {
            return new CheckpointReading([], state, problem);
        }
        var keys = (await signer.PublicKeysAsync(tenant)).ToDictionary(k => k.Kid, StringComparer.Ordinal);
        var verified = new SortedDictionary<long, AuditCheckpointClaims>();
        long inLog = 0;
        var rejected = 0;
        foreach (var line in log?.Lines ?? [])
        {
            if (Verify(line, tenant, keys) is { } claims)
            {
                verified.TryAdd(claims.Sequence, claims);
                inLog = Math.Max(inLog, claims.Sequence);
            }
            else
            {
                rejected++;
            }
        }
        foreach (var line in fromRedis)
        {
            if (Verify(line, tenant, keys) is { } claims)
            {
                verified.TryAdd(claims.Sequence, claims);
            }
            else
            {
                logger.LogWarning("An audit checkpoint of {Tenant} in Redis does not verify with its keys and was not used", tenant);
            }
        }
        if (log is not null)
        {
            var pushed = (long?)known[1] ?? 0;
            var created = (long?)known[2];
            if (rejected > 0)
            {
                problem = $"{rejected} line(s) of the checkpoint log do not verify with the tenant's keys";
            }
            else if (created is { } c && log.CreatedOn?.ToUnixTimeMilliseconds() != c)
            {
                problem = log.CreatedOn is null
                    ? "the checkpoint log the app created is gone"
                    : $"the checkpoint log was replaced: created {log.CreatedOn:O}, the app created it {DateTimeOffset.FromUnixTimeMilliseconds(c):O}";
            }
            else if (inLog < pushed)
            {
                problem = $"the checkpoint log ends at #{inLog} but checkpoint #{pushed} was appended to it";
            }
            if (problem is not null)
            {
                state = CheckpointReading.Tampered;
                logger.LogWarning("Audit checkpoint log of {Tenant} ({Log}): {Problem}", tenant, store.Describe(Uri.EscapeDataString(tenant) + ".jsonl"), problem);
            }
        }
        return new CheckpointReading([.. verified.Values], state, problem);
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
