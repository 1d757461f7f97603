using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Audit;

public sealed partial class AuditLog
{
    /// <summary>The chain version of the rows written now: HMAC-SHA256 with the tenant's chain key.</summary>
    public const int KeyedChain = 1;

    /// <summary>
    /// Re-checks the tenant's chain and compares it with its signed checkpoints (kept outside the database). A row
    /// whose hash or link does not match, a row of the old (unkeyed) kind after a keyed one, or a row that is not the one
    /// a checkpoint signed is a rewrite (the first one is reported); a history that ends before the latest checkpoint,
    /// or differs from it at its sequence, is truncated.
    /// </summary>
    public async Task<AuditVerification> VerifyAsync(string tenant, CancellationToken cancellationToken)
    {
        var reading = await checkpoints.ReadAsync(tenant, cancellationToken);
        var signed = reading.Checkpoints;
        var bySequence = new Dictionary<long, AuditCheckpointClaims>();
        foreach (var checkpoint in signed)
        {
            bySequence.TryAdd(checkpoint.Sequence, checkpoint);
        }
        var latest = signed.Count == 0 ? null : signed[^1];
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        string? previous = null;
        byte[]? key = null;
        var keyed = false;
        var count = 0;
        long? rewritten = null;
        long? last = null;
        var truncated = false;
        var seen = 0;
        await foreach (var entry in db.AuditEntries.AsNoTracking()
                           .Where(e => e.Tenant == tenant)
                           .OrderBy(e => e.Sequence)
                           .AsAsyncEnumerable()
                           .WithCancellation(cancellationToken))
        {
            last = entry.Sequence;
            if (rewritten is null)
            {
                var linked = entry.PreviousHash == previous;
                var hashed = entry.ChainVersion switch
                {
                    0 => !keyed && entry.Hash == ComputeHash(entry),
                    KeyedChain => entry.Hash == ComputeMac(entry, key ??= await chainKey.ForTenantAsync(tenant, cancellationToken)),
                    _ => false,
                };
                keyed |= entry.ChainVersion == KeyedChain;
                if (linked && hashed)
                {
                    count++;
                }
                else
                {
                    rewritten = entry.Sequence;
                }
            }
            if (bySequence.TryGetValue(entry.Sequence, out var checkpoint))
            {
                seen++;
                if (!string.Equals(checkpoint.Hash, entry.Hash, StringComparison.Ordinal))
                {
                    // Not the row that was signed: the history was replaced from here (or before).
                    truncated = true;
                    rewritten ??= entry.Sequence;
                }
            }
            previous = entry.Hash;
        }
        // A signed sequence that is not there: cut off at the end, or a row taken out of the middle.
        if (seen < bySequence.Count)
        {
            truncated = true;
        }
        // A log that could not be read, or that was tampered with, proves nothing about the end of the history.
        return new AuditVerification(tenant, rewritten is null && !truncated && reading.Log == CheckpointReading.Ok, count, rewritten,
            rewritten, truncated, last,
            latest is null ? null : new AuditCheckpointSummary(latest.Sequence, latest.Hash, latest.At, latest.Kid), bySequence.Count,
            reading.Log, reading.Problem);
    }

    /// <summary>The newest row of the tenant's chain (null when it has none yet).</summary>
    public Task<AuditHead?> HeadAsync(string tenant, CancellationToken cancellationToken) => ReadHeadAsync(dbFactory, tenant, cancellationToken);

    internal static async Task<AuditHead?> ReadHeadAsync(IDbContextFactory<AppDbContext> dbFactory, string tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.AuditEntries.AsNoTracking().Where(e => e.Tenant == tenant).OrderByDescending(e => e.Sequence)
            .Select(e => new AuditHead(e.Sequence, e.Hash)).FirstOrDefaultAsync(cancellationToken);
    }

    /// <summary>The row's fields and the previous hash, as hashed (version 0) or MACed (version 1).</summary>
    private static string CanonicalText(AuditEntry e)
    {
        var text = string.Join('\u001f',
            e.PreviousHash, e.EntryId, e.At.UtcTicks, e.Tenant, e.ApprovalId, e.JobId, e.Actor, e.Action,
            e.FromState, e.ToState, e.Reason, e.PolicySnapshot, e.JobHash, e.Details);
        if (e.ApprovalSeq is { } seq)
        {
            text += "\u001fseq=" + seq.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        return text;
    }

    /// <summary>Chain version 0: the row's SHA-256 over its fields and the previous hash; the approval seq joins only when
    /// set, so rows written before it existed keep their hashes.</summary>
    internal static string ComputeHash(AuditEntry e) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(CanonicalText(e))));

    /// <summary>Chain version 1: HMAC-SHA256 of the same text with the tenant's chain key.</summary>
    internal static string ComputeMac(AuditEntry e, byte[] key) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(CanonicalText(e))));

    /// <summary>The row's hash the way its <see cref="AuditEntry.ChainVersion"/> says (for tools that hold the key).</summary>
    internal static string ComputeHash(AuditEntry e, byte[]? key) =>
        e.ChainVersion == KeyedChain && key is not null ? ComputeMac(e, key) : ComputeHash(e);
}

/// <summary>
/// The answer of <c>GET /api/v1/audit/verify</c>. <paramref name="Rewritten"/>: the first sequence that is not what was
/// written (null when none); <paramref name="Truncated"/>: the history ends before a signed checkpoint or differs from
/// it there; <paramref name="Checkpoint"/>: the latest checkpoint whose signature verified (null when none yet);
/// <paramref name="FirstBrokenSequence"/> is <paramref name="Rewritten"/> under its earlier name;
/// <paramref name="CheckpointLog"/>: the checkpoint log outside the database, <c>ok</c>, <c>unreachable</c> (the store did
/// not answer: truncation cannot be ruled out, so not intact) or <c>tampered</c> (see <see cref="AuditCheckpoints.ReadAsync"/>),
/// with <paramref name="CheckpointProblem"/> saying what was found.
/// </summary>
public sealed record AuditVerification(string Tenant, bool Intact, int VerifiedEntries, long? FirstBrokenSequence,
    long? Rewritten, bool Truncated, long? LastSequence, AuditCheckpointSummary? Checkpoint, int CheckpointsChecked,
    string CheckpointLog, string? CheckpointProblem);

public sealed record AuditCheckpointSummary(long Sequence, string Hash, DateTimeOffset At, string Kid);

/// <summary>Where a tenant's chain stands: its newest row.</summary>
public sealed record AuditHead(long Sequence, string Hash);

/// <summary>The audit table refused a row for a constraint other than its EntryId (e.g. a second entry for the same approval seq).</summary>
public sealed class AuditConflictException(AuditEntry entry)
    : InvalidOperationException($"Audit entry {entry.EntryId} ({entry.Action}) refused: the table already holds an entry for " +
                                $"seq {entry.ApprovalSeq} of approval {entry.ApprovalId} (a second transition from one state)")
{
    public AuditEntry Entry { get; } = entry;
}
