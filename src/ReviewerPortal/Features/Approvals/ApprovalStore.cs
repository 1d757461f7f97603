using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

public enum CreateStatus { Created, Duplicate }

public sealed record CreateResult(CreateStatus Status, string? ExistingReference);

/// <summary>A checked move of one approval from its current state to another.</summary>
public sealed record TransitionRequest
{
    public required string Tenant { get; init; }
    public required string ApprovalId { get; init; }
    public required string From { get; init; }
    public required string To { get; init; }
    public required DateTimeOffset Now { get; init; }
    public required TransitionMode Mode { get; init; }

    /// <summary>The approval's <c>seq</c> when the caller read it: the move happens only on that very version (a fenced write).</summary>
    public required int ExpectedSeq { get; init; }
    public string? SeenSnapshot { get; init; }
    public string? SeenJobHash { get; init; }
    public bool RequireCurrentPolicy { get; init; }

    /// <summary>The record's new time to live (null: unchanged); the approval's idempotency key gets the same.</summary>
    public TimeSpan? Retention { get; init; }

    /// <summary>The idempotency key the approval was submitted with (it lives exactly as long as the approval).</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Remove every timer of the approval (expiry, step, resubmission window): it is leaving the open states.</summary>
    public bool ClearTimers { get; init; }
    public required string AuditJson { get; init; }
    public IReadOnlyList<KeyValuePair<string, string>> Fields { get; init; } = [];

    /// <summary>Publish the job to the tenant's dispatch sink (written to the outbox in the same step).</summary>
    public bool Dispatch { get; init; }

    /// <summary>The move happens only while this field still holds this value (a timer fires once).</summary>
    public KeyValuePair<string, string>? Guard { get; init; }

    public IReadOnlyList<string> RemoveTimers { get; init; } = [];
    public IReadOnlyList<KeyValuePair<DateTimeOffset, string>> AddTimers { get; init; } = [];

    /// <summary>Notifications written to the tenant's outbox in the same step.</summary>
    public IReadOnlyList<Notifications.Notification> Notifications { get; init; } = [];

    /// <summary>Answer the record as the move left it (<see cref="TransitionResult.After"/>): the caller needs no read after it.</summary>
    public bool ReturnRecord { get; init; }

    /// <summary>The approval as read before a move that closes it (not stored: its age and trace are reported once the move happened).</summary>
    public Approval? Closing { get; init; }
}

public enum TransitionMode { Decide, Expire, Update }

/// <summary><c>ok</c>, <c>not_found</c>, <c>state</c> (Value = the current state), <c>not_due</c>,
/// <c>deadline_passed</c>, <c>stale</c> (the approval's seq or the guard field changed since the caller read it), <c>job_changed</c>, <c>snapshot_changed</c>.</summary>
public sealed record TransitionResult(string Status, string? Value)
{
    public bool Happened => Status == "ok";

    /// <summary>The record as the move left it, when the request asked for it (<see cref="TransitionRequest.ReturnRecord"/>).</summary>
    public Approval? After { get; init; }
}

public sealed record AgeBucketCount(string Label, long Count);

/// <summary>A tenant's pending queue at a glance: count, oldest age, age histogram, expiring within the hour.</summary>
public sealed record QueueStats(string Tenant, long Pending, TimeSpan? OldestAge, IReadOnlyList<AgeBucketCount> Histogram, long ExpiringWithinHour);

/// <summary>The age buckets of the histogram: [Min, Max) of an approval's age.</summary>
public sealed record AgeBucket(string Label, TimeSpan Min, TimeSpan? Max);

public static class AgeBuckets
{
    public static readonly IReadOnlyList<AgeBucket> All =
    [
        new("<5m", TimeSpan.Zero, TimeSpan.FromMinutes(5)),
        new("5-15m", TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(15)),
        new("15m-1h", TimeSpan.FromMinutes(15), TimeSpan.FromHours(1)),
        new("1-4h", TimeSpan.FromHours(1), TimeSpan.FromHours(4)),
        new("4-12h", TimeSpan.FromHours(4), TimeSpan.FromHours(12)),
        new("12-24h", TimeSpan.FromHours(12), TimeSpan.FromHours(24)),
        new(">24h", TimeSpan.FromHours(24), null),
    ];
}

/// <summary>A timer that fell due: its member (<c>kind|id</c>) and the due time it was scheduled for.</summary>
public sealed record DueTimer(string Member, long DueMs);

public sealed record ApprovalPage(IReadOnlyList<Approval> Items, string? NextCursor);

/// <summary>
/// What a submit reads first: the record an idempotency key points to (<c>approval:…</c> or <c>job:…</c>), the
/// tenant's settings revision and its current policy snapshot; null for each that is missing.
/// </summary>
public sealed record SubmitReads(string? Reference, string? SettingsRev, string? PolicySnapshot);

/// <summary>Where approvals, allowed jobs and their indexes live. One Redis implementation.</summary>
public interface IApprovalStore
{
    Task<CreateResult> CreateApprovalAsync(Approval approval, TimeSpan recordTtl, TimeSpan idempotencyTtl, string auditJson,
        IReadOnlyList<Notifications.Notification>? notifications = null);
    Task<CreateResult> CreateJobAsync(AllowedJob job, string? idempotencyKey, TimeSpan recordTtl, string auditJson, bool dispatch = false);
    Task<Approval?> GetApprovalAsync(string tenant, string id);

    /// <summary>The approval (null when gone) and its tenant's settings revision (null when it has none), in one round trip.</summary>
    Task<(Approval? Approval, string? SettingsRev)> GetApprovalWithSettingsRevAsync(string tenant, string id);

    /// <summary>What a submit reads before the policy decides, in one round trip.</summary>
    Task<SubmitReads> ReadForSubmitAsync(string tenant, string? idempotencyKey);
    Task<AllowedJob?> GetJobAsync(string tenant, string id);
    Task<string?> GetIdempotentReferenceAsync(string tenant, string key);
    Task<string?> FindTenantAsync(string approvalId);

    /// <summary>
    /// Drops index entries (approval or case id → tenant) whose record is gone (past its retention) and which were made
    /// before <paramref name="olderThan"/> (younger ones may belong to a create still under way). Returns how many.
    /// </summary>
    Task<long> PruneIndexAsync(DateTimeOffset olderThan, CancellationToken cancellationToken);
    Task IndexJobAsync(string tenant, string jobId, string approvalId);
    Task<TransitionResult> TransitionAsync(TransitionRequest request);
    Task<ApprovalPage> ListAsync(string tenant, string state, string? cursor, int limit);
    Task<IReadOnlyList<string>> DueTimersAsync(string tenant, DateTimeOffset now, int limit);

    /// <summary>The timers due by <paramref name="now"/> with the due time each was scheduled for (oldest first).</summary>
    Task<IReadOnlyList<DueTimer>> DueTimerEntriesAsync(string tenant, DateTimeOffset now, int limit);

    /// <summary>Moves the timer to <paramref name="to"/> (null: removes it) only while it is still due at <paramref name="seenDueMs"/>.</summary>
    Task<bool> MoveTimerAsync(string tenant, string member, long seenDueMs, DateTimeOffset? to);
    Task<DateTimeOffset?> NextTimerAsync(string tenant);
    Task<QueueStats> StatsAsync(string tenant, DateTimeOffset now);

    /// <summary>How many of the tenant's approvals are in <paramref name="state"/> (within the retention of decided ones).</summary>
    Task<long> CountAsync(string tenant, string state);
    Task<IReadOnlyList<Approval>> PendingRangeAsync(string tenant, int start, int count);
    Task<(bool Admitted, TimeSpan RetryAfter)> ThrottleAsync(string tenant, string ruleId, int limit, TimeSpan window, DateTimeOffset now);
}

