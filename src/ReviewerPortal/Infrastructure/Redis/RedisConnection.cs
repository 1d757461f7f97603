using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Storage;
using StackExchange.Redis;
using StackExchange.Redis.KeyspaceIsolation;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>
/// The app's one connection to Redis. Started by <see cref="RedisStartup"/> before any other hosted service:
/// with <c>Redis:Configuration</c> set it connects there, otherwise it starts the embedded Garnet server first.
/// The connection reconnects by itself; while Redis is away, calls fail fast and the API answers 503.
/// </summary>
public sealed class RedisConnection(
    IOptions<RedisOptions> options,
    IOptions<StorageOptions> storage,
    IHostEnvironment environment,
    ILoggerFactory loggers) : IAsyncDisposable
{
    private ConnectionMultiplexer? _multiplexer;
    private EmbeddedGarnet? _embedded;
    private IDatabase? _database;
    private readonly CancellationTokenSource _stopping = new();
    private Task _watching = Task.CompletedTask;

    public IConnectionMultiplexer Multiplexer =>
        _multiplexer ?? throw new InvalidOperationException("Redis is not connected yet.");

    public IDatabase Database => _database ?? throw new InvalidOperationException("Redis is not connected yet.");

    /// <summary>"embedded (garnet)" or "configured".</summary>
    public string Mode => _embedded is null ? "configured" : "embedded";

    public string? Endpoint { get; private set; }

    /// <summary>The embedded server's process, or null when Redis is configured.</summary>
    internal int? EmbeddedProcessId => _embedded?.ProcessId;

    internal async Task StartAsync(CancellationToken cancellationToken)
    {
        var config = options.Value.Configuration;
        var password = string.IsNullOrEmpty(options.Value.Password) ? null : options.Value.Password;
        if (string.IsNullOrWhiteSpace(config))
        {
            // The embedded server listens on loopback only and always requires a password.
            var dataPath = Path.Combine(storage.Value.ResolveDataPath(environment.ContentRootPath), "redis");
            password ??= EmbeddedGarnet.LoadOrCreatePassword(dataPath);
            var logger = loggers.CreateLogger("ReviewerPortal.EmbeddedGarnet");
            var embedded = new EmbeddedGarnetOptions
            {
                DataPath = dataPath,
                Port = options.Value.EmbeddedPort,
                CommitWait = options.Value.EmbeddedCommitWait,
                Password = password,
            };
            _embedded = await EmbeddedGarnet.StartAsync(embedded, logger, cancellationToken);
            config = _embedded.Endpoint;
            // Again on the same port (the connection's endpoint) if it dies: nobody else would start it.
            _watching = WatchEmbeddedAsync(embedded with { Port = _embedded.Port }, logger, _stopping.Token);
        }

        var parsed = ConfigurationOptions.Parse(config);
        if (password is not null)
        {
            parsed.Password = password;
        }
        if (!string.IsNullOrEmpty(options.Value.User))
        {
            parsed.User = options.Value.User;
        }
        if (_embedded is not null)
        {
            // The embedded server is used as database 0 only. Without SELECT in the command map the client never sends
            // one: otherwise it re-selects after every command it does not know (the durability wait's COMMITAOF), a
            // round trip per audit batch.
            parsed.CommandMap = CommandMap.Create(new HashSet<string> { "SELECT" }, available: false);
        }
        // Replies are read on the .NET thread pool, not on the client's own scheduler threads: on a small machine those
        // threads cost context switches and lock contention (README, Performance). The app never blocks pool threads.
        parsed.SocketManager = SocketManager.ThreadPool;
        parsed.AbortOnConnectFail = false;
        parsed.ConnectTimeout = Math.Min(parsed.ConnectTimeout, 5000);
        parsed.ClientName ??= "reviewerportal";
        var prefix = options.Value.KeyPrefix;
        if (!string.IsNullOrEmpty(prefix))
        {
            parsed.ChannelPrefix = RedisChannel.Literal(prefix);
        }
        _multiplexer = await ConnectionMultiplexer.ConnectAsync(parsed);
        var database = _multiplexer.GetDatabase();
        _database = string.IsNullOrEmpty(prefix) ? database : database.WithKeyPrefix(prefix);
        Endpoint = string.Join(",", parsed.EndPoints.Select(e => e.ToString()));
    }

    /// <summary>
    /// Starts the embedded server again whenever its process exits (killed, crashed, out of memory): it recovers from
    /// its append-only log on the same port and the connection reconnects by itself, so the app answers 503 meanwhile
    /// and recovers without anyone. A start that fails is tried again a second later.
    /// </summary>
    private async Task WatchEmbeddedAsync(EmbeddedGarnetOptions embedded, ILogger logger, CancellationToken stopping)
    {
        try
        {
            while (true)
            {
                await _embedded!.WaitForExitAsync(stopping);
                logger.LogError("The embedded Garnet server (process {Pid}) exited; starting it again on its append-only log",
                    _embedded.ProcessId);
                while (true)
                {
                    try
                    {
                        _embedded = await EmbeddedGarnet.StartAsync(embedded, logger, stopping);
                        logger.LogWarning("The embedded Garnet server is back (process {Pid})", _embedded.ProcessId);
                        break;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        logger.LogError(ex, "Starting the embedded Garnet server again failed; trying again in a second");
                        await Task.Delay(TimeSpan.FromSeconds(1), stopping);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>Leaves a channel at shutdown; a connection already closing has left it anyway, so that is no failure.</summary>
    public static async Task UnsubscribeQuietlyAsync(RedisConnection redis, RedisChannel channel)
    {
        try
        {
            await redis.Multiplexer.GetSubscriber().UnsubscribeAsync(channel);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The watcher first, so that stopping the server below is not taken for a crash.
        await _stopping.CancelAsync();
        await _watching;
        _stopping.Dispose();
        if (_multiplexer is not null)
        {
            await _multiplexer.CloseAsync();
            _multiplexer.Dispose();
        }
        if (_embedded is not null)
        {
            await _embedded.DisposeAsync();
        }
    }
}

/// <summary>
/// Connects Redis (starting the embedded server where none is configured) before the app serves anything, and reads
/// once what durability the server offers.
/// </summary>
public sealed class RedisStartup(RedisConnection connection, RedisDurability durability) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await connection.StartAsync(cancellationToken);
        await durability.DetectAsync();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
