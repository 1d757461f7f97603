using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// Control-plane counters per tenant, kept in Redis so every instance adds to the same figures:
/// the article's signals that approvals are being retried, drifting or stuck.
/// </summary>
public sealed class Counters(RedisConnection redis, ILogger<Counters> logger)
{
    public const string AlreadyApproved = "already_approved";
    public const string AlreadyRejected = "already_rejected";
    public const string SnapshotMismatch = "snapshot_mismatch";
    public const string JobMismatch = "job_mismatch";
    public const string ReplayedApproved = "replayed_approved";
    public const string DispatchFailures = "dispatch_failures";
    public const string NotificationFailures = "notification_failures";
    public const string RemindersSent = "reminders_sent";
    public const string Escalations = "escalations";
    public const string TimedOut = "timed_out";

    // Secrets taken out of free text before it was stored, by kind (see Features/Redaction/Redactor.cs).
    public const string RedactionsBearer = "redactions_bearer";
    public const string RedactionsApiKey = "redactions_api_key";
    public const string RedactionsCredential = "redactions_credential";
    public const string RedactionsPrivateKey = "redactions_private_key";
    public const string RedactionsCustom = "redactions_custom";
    public const string RedactionsUnscanned = "redactions_unscanned";

    public static readonly IReadOnlyList<string> All =
        [AlreadyApproved, AlreadyRejected, SnapshotMismatch, JobMismatch, ReplayedApproved, DispatchFailures,
            NotificationFailures, RemindersSent, Escalations, TimedOut,
            RedactionsBearer, RedactionsApiKey, RedactionsCredential, RedactionsPrivateKey, RedactionsCustom, RedactionsUnscanned];

    /// <summary>Adds one; a counter that cannot be written is logged, never a reason to fail the call it counts.</summary>
    public async Task IncrementAsync(string tenant, string name)
    {
        try
        {
            await redis.Database.HashIncrementAsync(RedisKeys.Stats(tenant), name);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            logger.LogWarning(ex, "Counter {Name} of {Tenant} not written", name, tenant);
        }
    }

    public async Task<IReadOnlyDictionary<string, long>> GetAsync(string tenant)
    {
        var stored = (await redis.Database.HashGetAllAsync(RedisKeys.Stats(tenant)))
            .ToDictionary(e => (string)e.Name!, e => (long)e.Value);
        return All.ToDictionary(name => name, name => stored.GetValueOrDefault(name));
    }
}
