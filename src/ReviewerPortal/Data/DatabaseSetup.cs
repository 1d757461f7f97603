using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Data;

public static class DatabaseSetup
{
    /// <summary>The Data Protection application name: every instance must share it to read each other's cookies and tokens.</summary>
    public const string ApplicationName = "ReviewerPortal";

    public static IHostApplicationBuilder AddDatabase(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        var contentRoot = builder.Environment.ContentRootPath;
        // Every IInterceptor registered in the container joins (tests register one that fails commits, for example).
        // Pooled: a context comes back reset instead of being built anew with its own EF service scope (the audit
        // writer opens one per batch; building it was ~4 % of the app's CPU under load).
        services.AddPooledDbContextFactory<SqliteAppDbContext>((sp, options) => options
            .UseSqlite(ConnectionString(Storage(sp), contentRoot))
            .AddInterceptors(sp.GetServices<IInterceptor>()));
        services.AddPooledDbContextFactory<PostgresAppDbContext>((sp, options) => options
            .UseNpgsql(Storage(sp).Database)
            .AddInterceptors(sp.GetServices<IInterceptor>()));
        // The rest of the app sees one AppDbContext, on whichever provider Storage:Provider names.
        services.AddSingleton<IDbContextFactory<AppDbContext>>(sp => Storage(sp).IsPostgres
            ? new AppDbContextFactory<PostgresAppDbContext>(sp.GetRequiredService<IDbContextFactory<PostgresAppDbContext>>())
            : new AppDbContextFactory<SqliteAppDbContext>(sp.GetRequiredService<IDbContextFactory<SqliteAppDbContext>>()));
        services.AddScoped<AppDbContext>(sp => sp.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContext());
        services.AddSingleton<DatabaseLock>();
        services.AddHostedService<DatabaseStartup>();
        // One key ring in the database, one application name: a cookie or anti-forgery token issued by one instance
        // is accepted by every other (and, on SQLite, the ring lives in the database file).
        var dataProtection = services.AddDataProtection().SetApplicationName(ApplicationName).PersistKeysToDbContext<AppDbContext>();
        // Opt-in: the ring's keys encrypted at rest with an X.509 certificate; a bad setting fails the start here.
        var certificateOptions = builder.Configuration.GetSection(DataProtectionCertificateOptions.Section).Get<DataProtectionCertificateOptions>();
        if (certificateOptions is not null && DataProtectionCertificate.Load(certificateOptions, contentRoot) is { } certificate)
        {
            dataProtection.ProtectKeysWithCertificate(certificate);
        }
        return builder;
    }

    public static string ConnectionString(StorageOptions storage, string contentRoot) =>
        string.IsNullOrWhiteSpace(storage.Database)
            ? $"Data Source={Path.Combine(storage.ResolveDataPath(contentRoot), "reviewerportal.db")}"
            : storage.Database;

    private static StorageOptions Storage(IServiceProvider services) => services.GetRequiredService<IOptions<StorageOptions>>().Value;

    private sealed class AppDbContextFactory<TContext>(IDbContextFactory<TContext> inner) : IDbContextFactory<AppDbContext>
        where TContext : AppDbContext
    {
        public AppDbContext CreateDbContext() => inner.CreateDbContext();

        public async Task<AppDbContext> CreateDbContextAsync(CancellationToken cancellationToken = default) =>
            await inner.CreateDbContextAsync(cancellationToken);
    }
}

/// <summary>Creates the data folder and applies migrations before the app serves anything.</summary>
public sealed class DatabaseStartup(
    IDbContextFactory<AppDbContext> dbFactory,
    DatabaseLock databaseLock,
    IOptions<StorageOptions> storage,
    IHostEnvironment environment) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(storage.Value.ResolveDataPath(environment.ContentRootPath));
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        // Instances starting together on one PostgreSQL database migrate one after the other.
        await using (await databaseLock.AcquireAsync("migrations", cancellationToken))
        {
            await db.Database.MigrateAsync(cancellationToken);
        }
        if (db.Database.IsSqlite())
        {
            // WAL lets readers (pages, audit queries) run beside the one writer; the setting stays with the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
