using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

public sealed partial class RedisApprovalStore(RedisConnection redis) : IApprovalStore
{
    private readonly RecentTenants _recent = new();

    private IDatabase Db => redis.Database;

    public async Task<CreateResult> CreateApprovalAsync(Approval a, TimeSpan recordTtl, TimeSpan idempotencyTtl, string auditJson,
        IReadOnlyList<Notifications.Notification>? notifications = null)
    {
        notifications ??= [];
        // The index is a separate key (another cluster slot); writing it first leaves at worst a harmless orphan.
        await Db.HashSetAsync(RedisKeys.ApprovalIndex, a.Id, a.Tenant);
        var created = a.CreatedAt.ToUnixTimeMilliseconds();
        List<RedisKey> keys =
        [
            RedisKeys.Approval(a.Tenant, a.Id),
            RedisKeys.IdempotencyOrNone(a.Tenant, a.IdempotencyKey),
            RedisKeys.AuditOutbox(a.Tenant),
            RedisKeys.JobIndex(a.Tenant),
            RedisKeys.StateSet(a.Tenant, a.State),
            RedisKeys.Timers(a.Tenant),
        ];
        var args = new List<RedisValue>
        {
            a.IdempotencyKey is null ? "" : "approval:" + a.Id,
            (long)idempotencyTtl.TotalMilliseconds,
            auditJson,
            (long)recordTtl.TotalMilliseconds,
            a.JobId, DispatchMember.ForApproval(a.Id),
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
        var result = ToCreateResult(await Db.ScriptEvaluateAsync(LuaScripts.Create, [.. keys], [.. args]));
        if (result.Status == CreateStatus.Created)
        {
            _recent.Remember(a.Id, a.Tenant);
        }
        return result;
    }

    public async Task<CreateResult> CreateJobAsync(AllowedJob job, string? idempotencyKey, TimeSpan recordTtl, string auditJson, bool dispatch = false)
    {
        List<RedisKey> keys =
        [
            RedisKeys.Job(job.Tenant, job.Id),
            RedisKeys.IdempotencyOrNone(job.Tenant, idempotencyKey),
            RedisKeys.AuditOutbox(job.Tenant),
            RedisKeys.JobIndex(job.Tenant),
        ];
        var args = new List<RedisValue>
        {
            idempotencyKey is null ? "" : "job:" + job.Id,
            (long)recordTtl.TotalMilliseconds,
            auditJson,
            (long)recordTtl.TotalMilliseconds,
            job.Id, DispatchMember.ForJob(job.Id),
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

    public async Task<(Approval? Approval, string? SettingsRev)> GetApprovalWithSettingsRevAsync(string tenant, string id)
    {
        var reply = (RedisResult[])(await Db.ScriptEvaluateAsync(LuaScripts.ReadWithSettings,
            [RedisKeys.Approval(tenant, id), RedisKeys.Settings(tenant)]))!;
        var rev = (string?)reply[0];
        var fields = Pairs((RedisResult[])reply[1]!);
        return (fields.Count == 0 ? null : ToApproval(fields), string.IsNullOrEmpty(rev) ? null : rev);
    }

    public async Task<SubmitReads> ReadForSubmitAsync(string tenant, string? idempotencyKey)
    {
        var reply = (RedisResult[])(await Db.ScriptEvaluateAsync(LuaScripts.SubmitReads,
            [RedisKeys.IdempotencyOrNone(tenant, idempotencyKey), RedisKeys.Settings(tenant), RedisKeys.PolicyCurrent(tenant)]))!;
        static string? Value(RedisResult r) => (string?)r is { Length: > 0 } s ? s : null;
        return new SubmitReads(idempotencyKey is null ? null : Value(reply[0]), Value(reply[1]), Value(reply[2]));
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

    public async Task<string?> FindTenantAsync(string approvalId)
    {
        if (_recent.Find(approvalId) is { } known)
        {
            return known;
        }
        var tenant = (string?)await Db.HashGetAsync(RedisKeys.ApprovalIndex, approvalId);
        if (tenant is not null)
        {
            _recent.Remember(approvalId, tenant);
        }
        return tenant;
    }

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
                foreach (var id in gone)
                {
                    _recent.Forget(id!);
                }
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
            RedisKeys.IdempotencyOrNone(r.Tenant, r.IdempotencyKey),
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
            r.ReturnRecord ? "1" : "0",
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
        var answer = await Db.ScriptEvaluateAsync(LuaScripts.Transition, keys, [.. args]);
        var (status, value) = LuaScripts.Status(answer);
        var items = (RedisResult[])answer!;
        return new TransitionResult(status, value) { After = items.Length > 2 ? ToApproval(Pairs((RedisResult[])items[2]!)) : null };
    }

    /// <summary>An HGETALL answer from a script (name, value, name, value …) as the record's fields.</summary>
    private static Dictionary<string, string?> Pairs(RedisResult[] flat)
    {
        var fields = new Dictionary<string, string?>(flat.Length / 2, StringComparer.Ordinal);
        for (var i = 0; i + 1 < flat.Length; i += 2)
        {
            fields[(string)flat[i]!] = (string?)flat[i + 1];
        }
        return fields;
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
}
