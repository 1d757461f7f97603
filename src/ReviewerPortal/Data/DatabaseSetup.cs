using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Data;

public static class DatabaseSetup
{
    public static IHostApplicationBuilder AddDatabase(this IHostApplicationBuilder builder)
    {
        // Every IInterceptor registered in the container joins (tests register one that fails commits, for example).
        builder.Services.AddDbContextFactory<AppDbContext>((services, options) => options
            .UseSqlite(ConnectionString(services.GetRequiredService<IOptions<StorageOptions>>().Value, builder.Environment.ContentRootPath))
            .AddInterceptors(services.GetServices<IInterceptor>()));
        builder.Services.AddHostedService<DatabaseStartup>();
        return builder;
    }

    public static string ConnectionString(StorageOptions storage, string contentRoot) =>
        string.IsNullOrWhiteSpace(storage.Database)
            ? $"Data Source={Path.Combine(storage.ResolveDataPath(contentRoot), "reviewerportal.db")}"
            : storage.Database;
}

/// <summary>Creates the data folder and applies migrations before the app serves anything.</summary>
public sealed class DatabaseStartup(
    IDbContextFactory<AppDbContext> dbFactory,
    IOptions<StorageOptions> storage,
    IHostEnvironment environment) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(storage.Value.ResolveDataPath(environment.ContentRootPath));
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await db.Database.MigrateAsync(cancellationToken);
        // WAL lets readers (pages, audit queries) run beside the one writer; the setting stays with the file.
        await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
