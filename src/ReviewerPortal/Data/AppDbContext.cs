using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Data;

/// <summary>
/// The database: accounts (ASP.NET Core Identity), API keys, the audit history and the Data Protection key ring.
/// One model for both providers; each provider has its own subclass only so that it has its own migrations
/// (<see cref="SqliteAppDbContext"/> in <c>Data/Migrations/Sqlite</c>, <see cref="PostgresAppDbContext"/> in
/// <c>Data/Migrations/Postgres</c>), as EF Core recommends for migrations with multiple providers. The rest of the
/// app only ever sees <see cref="AppDbContext"/>.
/// </summary>
public abstract class AppDbContext(DbContextOptions options) : IdentityDbContext<IdentityUser>(options), IDataProtectionKeyContext
{
    public DbSet<AuditEntry> AuditEntries => Set<AuditEntry>();
    public DbSet<ApiKey> ApiKeys => Set<ApiKey>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.ApplyConfigurationsFromAssembly(typeof(AppDbContext).Assembly);
    }
}

/// <summary>The model on SQLite (the default): a file under <c>Storage:DataPath</c>.</summary>
public sealed class SqliteAppDbContext(DbContextOptions<SqliteAppDbContext> options) : AppDbContext(options);

/// <summary>The model on PostgreSQL (<c>Storage:Provider=postgres</c>): shared by every instance.</summary>
public sealed class PostgresAppDbContext(DbContextOptions<PostgresAppDbContext> options) : AppDbContext(options);
