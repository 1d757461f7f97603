using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>Instances whose clocks disagree compare deadlines on one clock: the Redis server's.</summary>
public sealed class RedisServerClockTests
{
    [Fact]
    public async Task A_machine_whose_clock_is_ten_minutes_slow_reads_the_servers_time_after_a_sync()
    {
        await using var connection = new RedisConnection(
            Options.Create(new RedisOptions { Configuration = await TestServers.GarnetAsync() }),
            Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() },
            NullLoggerFactory.Instance);
        await connection.StartAsync(CancellationToken.None);
        var slow = new FakeTimeProvider(DateTimeOffset.UtcNow - TimeSpan.FromMinutes(10)); // this machine's clock
        var clock = new RedisServerClock(connection, slow, NullLogger<RedisServerClock>.Instance);
        Assert.True((DateTimeOffset.UtcNow - clock.GetUtcNow()).Duration() > TimeSpan.FromMinutes(9));

        await clock.SyncAsync();

        // The server runs on this host, so its clock is the real one.
        Assert.True((DateTimeOffset.UtcNow - clock.GetUtcNow()).Duration() < TimeSpan.FromSeconds(2),
            $"offset {clock.Offset}");
        Assert.True(clock.Offset > TimeSpan.FromMinutes(9));
        // The local clock's own progress is kept between syncs.
        var before = clock.GetUtcNow();
        slow.Advance(TimeSpan.FromHours(1));
        Assert.Equal(before + TimeSpan.FromHours(1), clock.GetUtcNow());
    }

    [Fact]
    public async Task The_app_runs_on_the_server_corrected_clock()
    {
        await using var app = await TestApp.StartAsync();
        var time = app.Services.GetRequiredService<TimeProvider>();
        var clock = Assert.IsType<RedisServerClock>(time);
        for (var i = 0; i < 100 && clock.SyncedAt is null; i++)
        {
            await Task.Delay(20); // the sync service measures right after start
        }
        Assert.NotNull(clock.SyncedAt);
    }
}
