using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// What someone who can read the data folder finds: the embedded Garnet's append-only log flushed and a checkpoint
/// taken first, then every file (the SQLite database and its -wal included) searched for each pattern's bytes.
/// </summary>
public static class DataFolderScan
{
    /// <summary>"{name} in {file}" for every pattern found in any file of the app's data folder; empty when none.</summary>
    public static async Task<List<string>> FindAsync(TestApp app, IEnumerable<(string Name, byte[] Bytes)> patterns)
    {
        var redis = app.Services.GetRequiredService<RedisConnection>();
        var options = ConfigurationOptions.Parse(redis.Multiplexer.Configuration);
        options.AllowAdmin = true;
        await using (var admin = await ConnectionMultiplexer.ConnectAsync(options))
        {
            var server = admin.GetServer(admin.GetEndPoints()[0]);
            await server.ExecuteAsync("SAVE");
            await server.ExecuteAsync("COMMITAOF");
        }
        var wanted = patterns.ToList();
        var found = new List<string>();
        foreach (var file in Directory.EnumerateFiles(app.DataPath, "*", SearchOption.AllDirectories))
        {
            byte[] bytes;
            await using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy);
                bytes = copy.ToArray();
            }
            found.AddRange(wanted.Where(p => bytes.AsSpan().IndexOf(p.Bytes) >= 0)
                .Select(p => $"{p.Name} in {Path.GetRelativePath(app.DataPath, file)}"));
        }
        return found;
    }
}
