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

    /// <summary>The approval as read before a move that closes it (not stored: its age and trace are reported once the move happened).</summary>
    public Approval? Closing { get; init; }
}

public enum TransitionMode { Decide, Expire, Update }

/// <summary><c>ok</c>, <c>not_found</c>, <c>state</c> (Value = the current state), <c>not_due</c>,
/// <c>deadline_passed</c>, <c>stale</c> (the approval's seq or the guard field changed since the caller read it), <c>job_changed</c>, <c>snapshot_changed</c>.</summary>
public sealed record TransitionResult(string Status, string? Value)
{
    public bool Happened => Status == "ok";
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

/// <summary>Where approvals, allowed jobs and their indexes live. One Redis implementation.</summary>
public interface IApprovalStore
{
    Task<CreateResult> CreateApprovalAsync(Approval approval, TimeSpan recordTtl, TimeSpan idempotencyTtl, string auditJson,
        IReadOnlyList<Notifications.Notification>? notifications = null);
    Task<CreateResult> CreateJobAsync(AllowedJob job, string? idempotencyKey, TimeSpan recordTtl, string auditJson, bool dispatch = false);
    Task<Approval?> GetApprovalAsync(string tenant, string id);
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

public sealed class RedisApprovalStore(RedisConnection redis) : IApprovalStore
{
    private IDatabase Db => redis.Database;

    public async Task<CreateResult> CreateApprovalAsync(Approval a, TimeSpan recordTtl, TimeSpan idempotencyTtl, string auditJson,
        IReadOnlyList<Notifications.Notification>? notifications = null)
    {
        notifications ??= [];
        // The index is a separate key (another cluster slot); writing it first leaves at worst a harmless orphan.
        await Db.HashSetAsync(RedisKeys.ApprovalIndex, a.Id, a.Tenant);
        await IndexJobAsync(a.Tenant, a.JobId, a.Id);
        var created = a.CreatedAt.ToUnixTimeMilliseconds();
        List<RedisKey> keys =
        [
            RedisKeys.Approval(a.Tenant, a.Id),
            a.IdempotencyKey is null ? RedisKeys.Idempotency(a.Tenant, "-") : RedisKeys.Idempotency(a.Tenant, a.IdempotencyKey),
            RedisKeys.AuditOutbox(a.Tenant),
            RedisKeys.StateSet(a.Tenant, a.State),
            RedisKeys.Timers(a.Tenant),
        ];
        var args = new List<RedisValue>
        {
            a.IdempotencyKey is null ? "" : "approval:" + a.Id,
            (long)idempotencyTtl.TotalMilliseconds,
            auditJson,
            (long)recordTtl.TotalMilliseconds,
            a.NextStepAt is null ? 2 : 3,
            created, a.Id,
            a.ExpiresAt.ToUnixTimeMilliseconds(), RedisKeys.ExpireTimer(a.Id),
        };
        if (a.NextStepAt is { } step)
        {
            keys.Add(RedisKeys.Timers(a.Tenant));
            args.Add(step.ToUnixTimeMilliseconds());
            args.Add(RedisKeys.StepTimer(a.Id));
        }
        keys.Add(RedisKeys.NotifyOutbox(a.Tenant));
        keys.Add(RedisKeys.NotifyBodies(a.Tenant));
        args.Add(notifications.Count);
        foreach (var n in notifications)
        {
            args.Add(n.At.ToUnixTimeMilliseconds());
            args.Add(n.Id);
            args.Add(n.ToJson());
        }
        AddFields(args, ToFields(a));
        return ToCreateResult(await Db.ScriptEvaluateAsync(LuaScripts.Create, [.. keys], [.. args]));
    }

    public async Task<CreateResult> CreateJobAsync(AllowedJob job, string? idempotencyKey, TimeSpan recordTtl, string auditJson, bool dispatch = false)
    {
        await Db.HashSetAsync(RedisKeys.JobIndex(job.Tenant), job.Id, DispatchMember.ForJob(job.Id));
        List<RedisKey> keys =
        [
            RedisKeys.Job(job.Tenant, job.Id),
            RedisKeys.Idempotency(job.Tenant, idempotencyKey ?? "-"),
            RedisKeys.AuditOutbox(job.Tenant),
        ];
        var args = new List<RedisValue>
        {
            idempotencyKey is null ? "" : "job:" + job.Id,
            (long)recordTtl.TotalMilliseconds,
            auditJson,
            (long)recordTtl.TotalMilliseconds,
            dispatch ? 1 : 0,
        };
        if (dispatch)
        {
            // Published by the dispatcher from the outbox, written in the same step as the job.
            keys.Add(RedisKeys.DispatchOutbox(job.Tenant));
            args.Add(job.CreatedAt.ToUnixTimeMilliseconds());
            args.Add(DispatchMember.ForJob(job.Id));
        }
        args.Add(0); // no notifications
        AddFields(args,
        [
            new("id", job.Id), new("tenant", job.Tenant), new("submitter", job.Submitter),
            new("policySnapshot", job.PolicySnapshot), new("jobHash", job.JobHash), new("ruleId", job.RuleId ?? ""),
            new("createdAt", job.CreatedAt.ToUnixTimeMilliseconds().ToString()),
            new("traceparent", job.TraceParent ?? ""),
            new("dispatch", dispatch ? "pending" : "none"), .. JobFields(job.Job),
        ]);
        return ToCreateResult(await Db.ScriptEvaluateAsync(LuaScripts.Create, [.. keys], [.. args]));
    }

    public async Task<Approval?> GetApprovalAsync(string tenant, string id)
    {
        var entries = await Db.HashGetAllAsync(RedisKeys.Approval(tenant, id));
        return entries.Length == 0 ? null : ToApproval(entries.ToDictionary(e => (string)e.Name!, e => (string?)e.Value));
    }

    public async Task<AllowedJob?> GetJobAsync(string tenant, string id)
    {
        var entries = await Db.HashGetAllAsync(RedisKeys.Job(tenant, id));
        if (entries.Length == 0)
        {
            return null;
        }
        var f = entries.ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        return new AllowedJob
        {
            Id = f["id"]!,
            Tenant = f["tenant"]!,
            Job = ToJob(f),
            Submitter = f["submitter"]!,
            PolicySnapshot = f["policySnapshot"]!,
            JobHash = f["jobHash"]!,
            RuleId = NullIfEmpty(f.GetValueOrDefault("ruleId")),
            CreatedAt = Ms(f["createdAt"])!.Value,
            Dispatch = NullIfEmpty(f.GetValueOrDefault("dispatch")) ?? "none",
        };
    }

    public async Task<string?> GetIdempotentReferenceAsync(string tenant, string key) =>
        await Db.StringGetAsync(RedisKeys.Idempotency(tenant, key));

    public Task IndexJobAsync(string tenant, string jobId, string approvalId) =>
        Db.HashSetAsync(RedisKeys.JobIndex(tenant), jobId, DispatchMember.ForApproval(approvalId));

    public async Task<string?> FindTenantAsync(string approvalId) =>
        await Db.HashGetAsync(RedisKeys.ApprovalIndex, approvalId);

    public async Task<long> PruneIndexAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        long removed = 0;
        var batch = new List<(string Id, string Tenant)>(500);
        async Task FlushAsync()
        {
            var exists = await Task.WhenAll(batch.Select(e => Db.KeyExistsAsync(e.Id.StartsWith("cas_", StringComparison.Ordinal)
                ? RedisKeys.Case(e.Tenant, e.Id)
                : RedisKeys.Approval(e.Tenant, e.Id))));
            var gone = batch.Where((_, i) => !exists[i]).Select(e => (RedisValue)e.Id).ToArray();
            if (gone.Length > 0)
            {
                removed += await Db.HashDeleteAsync(RedisKeys.ApprovalIndex, gone);
            }
            batch.Clear();
        }
        await foreach (var entry in Db.HashScanAsync(RedisKeys.ApprovalIndex, pageSize: 500).WithCancellation(cancellationToken))
        {
            if (ApprovalIds.CreatedAt(entry.Name) is { } made && made < olderThan)
            {
                batch.Add(((string)entry.Name!, (string)entry.Value!));
            }
            if (batch.Count == 500)
            {
                await FlushAsync();
            }
        }
        if (batch.Count > 0)
        {
            await FlushAsync();
        }
        return removed;
    }

    public async Task<TransitionResult> TransitionAsync(TransitionRequest r)
    {
        RedisKey[] keys =
        [
            RedisKeys.Approval(r.Tenant, r.ApprovalId),
            RedisKeys.StateSet(r.Tenant, r.From),
            RedisKeys.StateSet(r.Tenant, r.To),
            RedisKeys.Timers(r.Tenant),
            RedisKeys.AuditOutbox(r.Tenant),
            RedisKeys.PolicyCurrent(r.Tenant),
            RedisKeys.DispatchOutbox(r.Tenant),
            RedisKeys.NotifyOutbox(r.Tenant),
            RedisKeys.NotifyBodies(r.Tenant),
            RedisKeys.Idempotency(r.Tenant, r.IdempotencyKey ?? "-"),
        ];
        var remove = r.ClearTimers ? [.. r.RemoveTimers, .. RedisKeys.ApprovalTimers(r.ApprovalId)] : r.RemoveTimers;
        var args = new List<RedisValue>
        {
            r.ApprovalId, r.From, r.To, r.Now.ToUnixTimeMilliseconds(),
            r.Mode switch { TransitionMode.Decide => "decide", TransitionMode.Expire => "expire", _ => "update" },
            r.SeenSnapshot ?? "", r.SeenJobHash ?? "", r.RequireCurrentPolicy ? "1" : "0",
            r.Retention is { } keep ? (long)keep.TotalMilliseconds : "",
            r.Guard?.Key ?? "",
            r.AuditJson,
            r.Dispatch ? DispatchMember.ForApproval(r.ApprovalId) : "",
            r.Guard?.Value ?? "",
            remove.Count, r.AddTimers.Count, r.Notifications.Count,
            r.ExpectedSeq,
        };
        args.AddRange(remove.Select(m => (RedisValue)m));
        foreach (var (due, member) in r.AddTimers)
        {
            args.Add(due.ToUnixTimeMilliseconds());
            args.Add(member);
        }
        foreach (var n in r.Notifications)
        {
            args.Add(n.Id);
            args.Add(n.ToJson());
        }
        AddFields(args, r.Fields);
        var (status, value) = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.Transition, keys, [.. args]));
        return new TransitionResult(status, value);
    }

    public async Task<ApprovalPage> ListAsync(string tenant, string state, string? cursor, int limit)
    {
        // Members of one sorted set are ordered by (created-at score, id); the cursor is the last (score, id) seen.
        var key = RedisKeys.StateSet(tenant, state);
        double min = double.NegativeInfinity;
        string? afterId = null;
        if (PageCursor.TryParse(cursor, out var score, out var id))
        {
            min = score;
            afterId = id;
        }
        // Collect one more than asked: its presence proves there is a next page.
        var items = new List<Approval>(limit + 1);
        long skip = 0;
        while (items.Count <= limit)
        {
            var take = limit + 1 - items.Count + 1;
            var batch = await Db.SortedSetRangeByScoreWithScoresAsync(key, min, double.PositiveInfinity, skip: skip, take: take);
            skip += batch.Length;
            var candidates = batch.Where(entry => afterId is null || entry.Score != min
                                                  || string.CompareOrdinal((string)entry.Element!, afterId) > 0).ToList();
            // One round trip's worth of reads at once, not one per row.
            var loaded = await Task.WhenAll(candidates.Select(entry => GetApprovalAsync(tenant, (string)entry.Element!)));
            for (var i = 0; i < candidates.Count && items.Count <= limit; i++)
            {
                if (loaded[i] is not { } approval)
                {
                    // The record outlived its retention: drop the stale index entry.
                    await Db.SortedSetRemoveAsync(key, candidates[i].Element);
                    skip--;
                    continue;
                }
                if (approval.State == state)
                {
                    items.Add(approval);
                }
            }
            if (batch.Length < take)
            {
                break;
            }
        }
        string? next = null;
        if (items.Count > limit)
        {
            items.RemoveRange(limit, items.Count - limit);
            next = PageCursor.Format(items[^1].CreatedAt.ToUnixTimeMilliseconds(), items[^1].Id);
        }
        return new ApprovalPage(items, next);
    }

    public async Task<IReadOnlyList<string>> DueTimersAsync(string tenant, DateTimeOffset now, int limit) =>
        [.. (await DueTimerEntriesAsync(tenant, now, limit)).Select(t => t.Member)];

    public async Task<IReadOnlyList<DueTimer>> DueTimerEntriesAsync(string tenant, DateTimeOffset now, int limit)
    {
        var due = await Db.SortedSetRangeByScoreWithScoresAsync(RedisKeys.Timers(tenant), double.NegativeInfinity,
            now.ToUnixTimeMilliseconds(), take: limit);
        return [.. due.Select(e => new DueTimer((string)e.Element!, (long)e.Score))];
    }

    public async Task<bool> MoveTimerAsync(string tenant, string member, long seenDueMs, DateTimeOffset? to) =>
        (int)await Db.ScriptEvaluateAsync(LuaScripts.TimerMove, [RedisKeys.Timers(tenant)],
            [member, seenDueMs, to is { } at ? at.ToUnixTimeMilliseconds() : ""]) == 1;

    public async Task<DateTimeOffset?> NextTimerAsync(string tenant)
    {
        var first = await Db.SortedSetRangeByRankWithScoresAsync(RedisKeys.Timers(tenant), 0, 0);
        return first.Length == 0 ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)first[0].Score);
    }

    public Task<long> CountAsync(string tenant, string state) => Db.SortedSetLengthAsync(RedisKeys.StateSet(tenant, state));

    public async Task<QueueStats> StatsAsync(string tenant, DateTimeOffset now)
    {
        // Counts come from sorted-set ranges by age (ZCOUNT), never from a scan of the approvals.
        var key = RedisKeys.StateSet(tenant, ApprovalStates.Pending);
        var nowMs = now.ToUnixTimeMilliseconds();
        var batch = Db.CreateBatch();
        var buckets = AgeBuckets.All.Select(b => batch.SortedSetLengthAsync(key,
            b.Max is { } max ? nowMs - (long)max.TotalMilliseconds : double.NegativeInfinity,
            nowMs - (long)b.Min.TotalMilliseconds,
            b.Max is null ? Exclude.None : Exclude.Start)).ToList();
        var total = batch.SortedSetLengthAsync(key);
        var oldest = batch.SortedSetRangeByRankWithScoresAsync(key, 0, 0);
        var expiring = batch.SortedSetLengthAsync(RedisKeys.Timers(tenant), nowMs, nowMs + (long)TimeSpan.FromHours(1).TotalMilliseconds);
        batch.Execute();
        await Task.WhenAll([.. buckets, total, oldest, expiring]);
        var first = oldest.Result;
        return new QueueStats(
            tenant,
            total.Result,
            first.Length == 0 ? null : now - DateTimeOffset.FromUnixTimeMilliseconds((long)first[0].Score),
            [.. AgeBuckets.All.Select((b, i) => new AgeBucketCount(b.Label, buckets[i].Result))],
            expiring.Result);
    }

    public async Task<IReadOnlyList<Approval>> PendingRangeAsync(string tenant, int start, int count)
    {
        if (count <= 0)
        {
            return [];
        }
        var ids = await Db.SortedSetRangeByRankAsync(RedisKeys.StateSet(tenant, ApprovalStates.Pending), start, start + count - 1);
        var loaded = await Task.WhenAll(ids.Select(id => GetApprovalAsync(tenant, (string)id!)));
        return [.. loaded.Where(a => a is not null && a.State == ApprovalStates.Pending).Select(a => a!)];
    }

    /// <summary>The job ids on a Redis dispatch sink (operators' and the fault harness's view).</summary>
    public async Task<IReadOnlyList<string>> SinkAsync(string tenant, string key)
    {
        var items = await Db.ListRangeAsync(RedisKeys.Sink(tenant, key));
        return [.. items.Select(i => System.Text.Json.JsonDocument.Parse((string)i!).RootElement.GetProperty("jobId").GetString()!)];
    }

    public async Task<(bool Admitted, TimeSpan RetryAfter)> ThrottleAsync(string tenant, string ruleId, int limit, TimeSpan window, DateTimeOffset now)
    {
        var reply = (RedisResult[])(await Db.ScriptEvaluateAsync(LuaScripts.Throttle,
            [RedisKeys.Throttle(tenant, ruleId)],
            [now.ToUnixTimeMilliseconds(), (long)window.TotalMilliseconds, limit, Guid.NewGuid().ToString("N")]))!;
        return ((int)reply[0] == 1, TimeSpan.FromMilliseconds(Math.Max(0, (long)reply[1])));
    }

    private static CreateResult ToCreateResult(RedisResult result)
    {
        var (status, value) = LuaScripts.Status(result);
        return status switch
        {
            "ok" => new CreateResult(CreateStatus.Created, null),
            "duplicate" => new CreateResult(CreateStatus.Duplicate, value),
            _ => throw new InvalidOperationException($"Record already exists ({status})."),
        };
    }

    private static void AddFields(List<RedisValue> args, IEnumerable<KeyValuePair<string, string>> fields)
    {
        foreach (var (name, value) in fields)
        {
            args.Add(name);
            args.Add(value);
        }
    }

    internal static IEnumerable<KeyValuePair<string, string>> JobFields(JobRequest job) =>
    [
        new("topic", job.Topic), new("env", job.Env), new("channel", job.Channel ?? ""),
        new("priority", job.Priority), new("payload", job.Payload.GetRawText()),
    ];

    private static List<KeyValuePair<string, string>> ToFields(Approval a) =>
    [
        new("id", a.Id), new("tenant", a.Tenant), new("jobId", a.JobId), new("state", a.State),
        new("submitter", a.Submitter), new("idempotencyKey", a.IdempotencyKey ?? ""),
        new("policySnapshot", a.PolicySnapshot), new("jobHash", a.JobHash), new("ruleId", a.RuleId ?? ""),
        new("createdAt", a.CreatedAt.ToUnixTimeMilliseconds().ToString()),
        new("expiresAt", a.ExpiresAt.ToUnixTimeMilliseconds().ToString()),
        new("seq", a.Seq.ToString()),
        new("requestedBy", a.RequestedBy ?? ""),
        new("traceparent", a.TraceParent ?? ""),
        .. WorkflowFields(a),
        .. JobFields(a.Job),
    ];

    /// <summary>
    /// Every field of an approval's record, as <see cref="GetApprovalAsync"/> reads it back (an import writes a record
    /// exported elsewhere exactly as it was).
    /// </summary>
    internal static List<KeyValuePair<string, string>> RecordFields(Approval a) =>
    [
        .. ToFields(a),
        new("decidedAt", a.DecidedAt is { } decided ? Ms(decided) : ""),
        new("decidedBy", a.DecidedBy ?? ""),
        new("reason", a.Reason ?? ""),
        new("reevaluatedAt", a.ReevaluatedAt is { } reevaluated ? Ms(reevaluated) : ""),
        new("reevaluationNote", a.ReevaluationNote ?? ""),
        new("dispatch", a.Dispatch),
        new("approvalGranted", a.ApprovalGranted ? "true" : ""),
        new("resubmitBy", a.ResubmitBy is { } by ? Ms(by) : ""),
        new("changesRequestedBy", a.ChangesRequestedBy ?? ""),
        new("changesReason", a.ChangesReason ?? ""),
        new("lastResubmitKey", a.LastResubmitKey ?? ""),
        new("edited", a.Edited ? "true" : ""),
        new("editedBy", a.EditedBy ?? ""),
    ];

    /// <summary>The workflow fields of an approval (written at create and again at each resubmission).</summary>
    internal static List<KeyValuePair<string, string>> WorkflowFields(Approval a) =>
    [
        new("version", a.Version.ToString()),
        new("versionAt", a.VersionSubmittedAt is { } versionAt ? Ms(versionAt) : Ms(a.CreatedAt)),
        new("lineage", System.Text.Json.JsonSerializer.Serialize(a.Lineage, Infrastructure.Json.AppJsonContext.Default.IReadOnlyListApprovalVersion)),
        new("votes", VotesJson(a.Votes)),
        new("escalationLevel", a.EscalationLevel.ToString()),
        new("remindersSent", a.RemindersSent.ToString()),
        new("levelReminders", a.LevelReminders.ToString()),
        new("levelStartedAt", a.LevelStartedAt is { } started ? Ms(started) : ""),
        new("nextStep", a.NextStep ?? ""),
        new("nextStepAt", a.NextStepAt is { } at ? Ms(at) : ""),
        new("timeoutOutcome", a.TimeoutOutcome ?? ""),
    ];

    internal static string VotesJson(IReadOnlyList<Vote> votes) =>
        System.Text.Json.JsonSerializer.Serialize(votes, Infrastructure.Json.AppJsonContext.Default.IReadOnlyListVote);

    private static JobRequest ToJob(Dictionary<string, string?> f)
    {
        using var payload = JsonDocument.Parse(f.GetValueOrDefault("payload") ?? "{}");
        return new JobRequest(f["topic"]!, f["env"]!, NullIfEmpty(f.GetValueOrDefault("channel")),
            f.GetValueOrDefault("priority") ?? "normal", payload.RootElement.Clone());
    }

    private static Approval ToApproval(Dictionary<string, string?> f) => new()
    {
        Id = f["id"]!,
        Tenant = f["tenant"]!,
        JobId = f["jobId"]!,
        State = f["state"]!,
        Job = ToJob(f),
        Submitter = f["submitter"]!,
        IdempotencyKey = NullIfEmpty(f.GetValueOrDefault("idempotencyKey")),
        PolicySnapshot = f["policySnapshot"]!,
        JobHash = f["jobHash"]!,
        RuleId = NullIfEmpty(f.GetValueOrDefault("ruleId")),
        CreatedAt = Ms(f["createdAt"])!.Value,
        ExpiresAt = Ms(f["expiresAt"])!.Value,
        DecidedAt = Ms(f.GetValueOrDefault("decidedAt")),
        DecidedBy = NullIfEmpty(f.GetValueOrDefault("decidedBy")),
        Reason = NullIfEmpty(f.GetValueOrDefault("reason")),
        Seq = int.TryParse(f.GetValueOrDefault("seq"), out var seq) ? seq : 0,
        ReevaluatedAt = Ms(f.GetValueOrDefault("reevaluatedAt")),
        ReevaluationNote = NullIfEmpty(f.GetValueOrDefault("reevaluationNote")),
        Dispatch = NullIfEmpty(f.GetValueOrDefault("dispatch")) ?? "none",
        ApprovalGranted = f.GetValueOrDefault("approvalGranted") == "true",
        RequestedBy = NullIfEmpty(f.GetValueOrDefault("requestedBy")),
        TraceParent = NullIfEmpty(f.GetValueOrDefault("traceparent")),
        Version = int.TryParse(f.GetValueOrDefault("version"), out var version) ? version : 1,
        VersionSubmittedAt = Ms(f.GetValueOrDefault("versionAt")),
        Lineage = f.GetValueOrDefault("lineage") is { Length: > 0 } lineage
            ? System.Text.Json.JsonSerializer.Deserialize(lineage, Infrastructure.Json.AppJsonContext.Default.IReadOnlyListApprovalVersion) ?? []
            : [],
        Votes = f.GetValueOrDefault("votes") is { Length: > 0 } votes
            ? System.Text.Json.JsonSerializer.Deserialize(votes, Infrastructure.Json.AppJsonContext.Default.IReadOnlyListVote) ?? []
            : [],
        EscalationLevel = int.TryParse(f.GetValueOrDefault("escalationLevel"), out var level) ? level : 0,
        RemindersSent = int.TryParse(f.GetValueOrDefault("remindersSent"), out var sent) ? sent : 0,
        LevelReminders = int.TryParse(f.GetValueOrDefault("levelReminders"), out var levelSent) ? levelSent : 0,
        LevelStartedAt = Ms(f.GetValueOrDefault("levelStartedAt")),
        NextStep = NullIfEmpty(f.GetValueOrDefault("nextStep")),
        NextStepAt = Ms(f.GetValueOrDefault("nextStepAt")),
        TimeoutOutcome = NullIfEmpty(f.GetValueOrDefault("timeoutOutcome")),
        ResubmitBy = Ms(f.GetValueOrDefault("resubmitBy")),
        ChangesRequestedBy = NullIfEmpty(f.GetValueOrDefault("changesRequestedBy")),
        ChangesReason = NullIfEmpty(f.GetValueOrDefault("changesReason")),
        LastResubmitKey = NullIfEmpty(f.GetValueOrDefault("lastResubmitKey")),
        Edited = f.GetValueOrDefault("edited") == "true",
        EditedBy = NullIfEmpty(f.GetValueOrDefault("editedBy")),
    };

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static DateTimeOffset? Ms(string? value) =>
        long.TryParse(value, out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    internal static string Ms(DateTimeOffset value) => value.ToUnixTimeMilliseconds().ToString();
}

/// <summary>Members of the dispatch outbox: <c>approval|apr_…</c> or <c>job|job_…</c>.</summary>
public static class DispatchMember
{
    public static string ForApproval(string approvalId) => "approval|" + approvalId;
    public static string ForJob(string jobId) => "job|" + jobId;
}

/// <summary>Opaque paging cursor: the last (score, id) of the previous page, base64url-encoded.</summary>
public static class PageCursor
{
    public static string Format(long score, string id) =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{score}:{id}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool TryParse(string? cursor, out double score, out string id)
    {
        score = 0;
        id = "";
        if (string.IsNullOrEmpty(cursor))
        {
            return false;
        }
        try
        {
            var padded = cursor.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - padded.Length % 4) % 4);
            var text = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(padded));
            var colon = text.IndexOf(':');
            if (colon <= 0 || !long.TryParse(text[..colon], out var s))
            {
                return false;
            }
            score = s;
            id = text[(colon + 1)..];
            return id.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
