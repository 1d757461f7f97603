using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace ReviewerPortal.Features.Auth;

public enum ApiKeyKind
{
    /// <summary>An automation or AI agent of one tenant: submits jobs, reads its tenant's approvals.</summary>
    Agent = 0,

    /// <summary>A person's API token (reviewer, on-call or admin); acts as that account.</summary>
    Account = 1,
}

/// <summary>A bearer credential. Only its SHA-256 is stored; the secret is shown once when created.</summary>
public sealed class ApiKey
{
    public int Id { get; set; }
    public required string Name { get; set; }
    public ApiKeyKind Kind { get; set; }
    public required string KeyHash { get; set; }

    /// <summary>The first characters of the secret, to tell keys apart in lists.</summary>
    public required string Prefix { get; set; }

    /// <summary>Agent keys: the tenant the key acts for.</summary>
    public string? Tenant { get; set; }

    /// <summary>Account tokens: the user name the token acts as.</summary>
    public string? UserName { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

public sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> builder)
    {
        builder.ToTable("ApiKeys");
        builder.HasIndex(k => k.KeyHash).IsUnique();
        builder.Property(k => k.Name).HasMaxLength(200);
        builder.Property(k => k.KeyHash).HasMaxLength(64);
        builder.Property(k => k.Prefix).HasMaxLength(16);
        builder.Property(k => k.Tenant).HasMaxLength(64);
        builder.Property(k => k.UserName).HasMaxLength(256);
        builder.Property(k => k.CreatedAt).HasConversion(v => v.UtcTicks, v => new DateTimeOffset(v, TimeSpan.Zero));
        builder.Property(k => k.RevokedAt).HasConversion(
            v => v.HasValue ? v.Value.UtcTicks : (long?)null,
            v => v.HasValue ? new DateTimeOffset(v.Value, TimeSpan.Zero) : null);
    }
}
