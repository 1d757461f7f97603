using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

public sealed class RedisLockTests
{
    /// <summary>
    /// The work under the lock is done (a decision stands): an unlock that times out must not turn it into a failure.
    /// The lease runs out by itself.
    /// </summary>
    [SkippableFact]
    public async Task An_unlock_that_times_out_does_not_fail_the_work_it_guarded()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        await using var server = await RedisServerProcess.StartAsync();
        await using var connection = new RedisConnection(
            Options.Create(new RedisOptions { Configuration = server.Endpoint + ",asyncTimeout=300,syncTimeout=300" }),
            Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() },
            NullLoggerFactory.Instance);
        await connection.StartAsync(CancellationToken.None);
        var locks = new RedisLockFactory(connection, Options.Create(new RedisOptions { LockLease = TimeSpan.FromSeconds(2) }));
        RedisKey key = "{acme}:lock:unlock-timeout";
        var held = await locks.TryAcquireAsync(key, CancellationToken.None);
        Assert.NotNull(held);

        // The server stalls past the client's timeout (the admin connection stays open: closing it would wait out the pause).
        var admin = await ConnectionMultiplexer.ConnectAsync(server.Endpoint);
        await admin.GetDatabase().ExecuteAsync("CLIENT", "PAUSE", "3000", "ALL");

        var unlock = await Record.ExceptionAsync(async () => await held.DisposeAsync());
        Assert.Null(unlock);
        admin.Dispose();
    }
}
