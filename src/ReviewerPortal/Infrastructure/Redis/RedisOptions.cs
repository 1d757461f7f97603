using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Infrastructure.Redis;

public sealed class RedisOptions
{
    public const string Section = "Redis";

    /// <summary>
    /// A StackExchange.Redis configuration string (e.g. <c>redis.internal:6380,ssl=true</c>; the password in <see cref="Password"/>).
    /// Empty: the app starts an embedded Garnet server with its data under <c>Storage:DataPath</c>.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// The password for Redis (<c>AUTH</c>), given to StackExchange.Redis over any <c>password=</c> in
    /// <see cref="Configuration"/>. Embedded Garnet: the password it requires; empty: one generated at the first start
    /// and kept in <c>{DataPath}/redis/redis-password</c> (readable by the app's user only).
    /// </summary>
    public string? Password { get; set; }

    /// <summary>An ACL user name for an external Redis (<c>AUTH user password</c>); empty: the default user.</summary>
    public string? User { get; set; }

    /// <summary>
    /// Prefix for every key and channel, to share one Redis with other apps or other instances' tests
    /// (e.g. <c>staging:</c>). The tenant hash tag stays inside each key, so cluster slots are unaffected.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9:_.-]{0,64}$")]
    public string? KeyPrefix { get; set; }

    /// <summary>Embedded Garnet: make every reply wait for the append-only log flush (power-loss safe, slower).</summary>
    public bool EmbeddedCommitWait { get; set; }

    /// <summary>Embedded Garnet: loopback port; empty picks a free one.</summary>
    [Range(1, 65535)]
    public int? EmbeddedPort { get; set; }

    /// <summary>How long the lock on one approval may be held before it lapses.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan LockLease { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a decision waits for a busy lock before answering 423.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan LockWaitBudget { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// After each batch of transitions and before their audit rows commit, wait for the Redis writes to be durable:
    /// <c>Auto</c> uses what the server offers (WAITAOF on Redis 7.2+ with AOF on, WAIT with replicas; nothing on a
    /// server without either), <c>Off</c> never waits.
    /// </summary>
    public DurabilityWait WaitForDurability { get; set; } = DurabilityWait.Auto;

    /// <summary>How long one durability wait may take before the batch goes on (logged and counted as short).</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30")]
    public TimeSpan DurabilityWaitTimeout { get; set; } = TimeSpan.FromSeconds(1);
}
