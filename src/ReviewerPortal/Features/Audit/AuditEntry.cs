using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace ReviewerPortal.Features.Audit;

/// <summary>
/// One transition in the audit history. Rows are append-only (database triggers refuse UPDATE and DELETE) and
/// chained per tenant: <see cref="Hash"/> covers the row and the tenant's previous hash, so an edit made behind
/// the app's back shows up in <c>GET /api/v1/audit/verify</c>. Since chain version 1 the hash is an HMAC whose key is
/// not in the database (<see cref="AuditChainKey"/>), so whoever edits the database cannot recompute it.
/// </summary>
public sealed class AuditEntry
{
    public long Sequence { get; set; }
    public required string EntryId { get; set; }
    public DateTimeOffset At { get; set; }
    public required string Tenant { get; set; }
    public string? ApprovalId { get; set; }
    public string? JobId { get; set; }
    public required string Actor { get; set; }
    public required string Action { get; set; }
    public string? FromState { get; set; }
    public string? ToState { get; set; }
    public string? Reason { get; set; }
    public string? PolicySnapshot { get; set; }
    public string? JobHash { get; set; }
    public string? Details { get; set; }

    /// <summary>
    /// For an approval transition, the approval's <c>seq</c> that the transition wrote in Redis; null for entries that
    /// do not move an approval. At most one entry per (tenant, approval, seq): a second claim is a double transition.
    /// </summary>
    public long? ApprovalSeq { get; set; }
    public string? PreviousHash { get; set; }
    public string Hash { get; set; } = "";

    /// <summary>
    /// How <see cref="Hash"/> was made: 0, SHA-256 (rows written before the keyed chain); 1, HMAC-SHA256 with the
    /// tenant's chain key. Once a tenant's chain holds a version 1 row, a later row of version 0 is a rewrite.
    /// </summary>
    public int ChainVersion { get; set; }
}

public sealed class AuditEntryConfiguration : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> builder)
    {
        builder.ToTable("AuditEntries");
        builder.HasKey(e => e.Sequence);
        builder.Property(e => e.Sequence).ValueGeneratedOnAdd();
        builder.HasIndex(e => e.EntryId).IsUnique();
        builder.HasIndex(e => new { e.Tenant, e.Sequence });
        builder.HasIndex(e => new { e.Tenant, e.ApprovalId });
        // One entry per approval seq; entries without a seq are not constrained.
        builder.HasIndex(e => new { e.Tenant, e.ApprovalId, e.ApprovalSeq }).IsUnique().HasFilter("\"ApprovalSeq\" IS NOT NULL");
        builder.HasIndex(e => e.At);
        builder.Property(e => e.EntryId).HasMaxLength(64);
        builder.Property(e => e.Tenant).HasMaxLength(64);
        builder.Property(e => e.ApprovalId).HasMaxLength(64);
        builder.Property(e => e.JobId).HasMaxLength(64);
        builder.Property(e => e.Actor).HasMaxLength(200);
        builder.Property(e => e.Action).HasMaxLength(64);
        builder.Property(e => e.FromState).HasMaxLength(32);
        builder.Property(e => e.ToState).HasMaxLength(32);
        builder.Property(e => e.Reason).HasMaxLength(2000);
        builder.Property(e => e.PolicySnapshot).HasMaxLength(64);
        builder.Property(e => e.JobHash).HasMaxLength(64);
        builder.Property(e => e.PreviousHash).HasMaxLength(64);
        builder.Property(e => e.Hash).HasMaxLength(64);
        // SQLite cannot order by DateTimeOffset natively; store UTC ticks so time-range filters run in SQL.
        builder.Property(e => e.At).HasConversion(v => v.UtcTicks, v => new DateTimeOffset(v, TimeSpan.Zero));
    }
}
