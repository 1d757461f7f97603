using System.Text.Json;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>The store's contract, run against every Redis-protocol server we support.</summary>
public abstract class ApprovalStoreContractTests : IAsyncLifetime
{
    private RedisConnection? _connection;
    private RedisApprovalStore? _store;
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 9, 0, 0, TimeSpan.Zero);

    protected abstract Task<string?> EndpointAsync();

    public async Task InitializeAsync()
    {
        var endpoint = await EndpointAsync();
        if (endpoint is null)
        {
            return;
        }
        _connection = new RedisConnection(
            Options.Create(new RedisOptions { Configuration = endpoint, KeyPrefix = $"c{Guid.NewGuid():N}:" }),
            Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() },
            NullLoggerFactory.Instance);
        await _connection.StartAsync(CancellationToken.None);
        _store = new RedisApprovalStore(_connection);
    }

    public async Task DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync();
        }
    }

    private RedisApprovalStore Store
    {
        get
        {
            Skip.If(_store is null, TestServers.RedisInstallHint);
            return _store!;
        }
    }

    private static Approval NewApproval(string tenant = "acme", string? idempotencyKey = null, DateTimeOffset? at = null)
    {
        var now = at ?? T0;
        return new Approval
        {
            Id = ApprovalIds.NewApprovalId(now),
            Tenant = tenant,
            JobId = ApprovalIds.NewJobId(now),
            State = ApprovalStates.Pending,
            Job = new JobRequest("finance.payment.execute", "production", null, "high",
                JsonDocument.Parse("""{"amount":12.50,"to":"ACME-1"}""").RootElement),
            Submitter = "agent-1",
            IdempotencyKey = idempotencyKey,
            PolicySnapshot = new string('1', 64),
            JobHash = new string('2', 64),
            RuleId = "require-approval-prod-finance",
            CreatedAt = now,
            ExpiresAt = now.AddHours(24),
        };
    }

    private Task<CreateResult> Create(Approval a) => Store.CreateApprovalAsync(a, TimeSpan.FromDays(2), TimeSpan.FromDays(1), "{}");

    private TransitionRequest Decide(Approval a, string to = ApprovalStates.Approved, int seq = 0) => new()
    {
        Tenant = a.Tenant,
        ApprovalId = a.Id,
        From = ApprovalStates.Pending,
        To = to,
        ExpectedSeq = seq,
        Now = T0.AddHours(1),
        Mode = TransitionMode.Decide,
        ClearTimers = true,
        Retention = TimeSpan.FromDays(30),
        AuditJson = "{\"entry\":1}",
        Fields = [new("decidedBy", "alice")],
    };

    [SkippableFact]
    public async Task Created_approval_reads_back_whole()
    {
        var a = NewApproval();
        Assert.Equal(CreateStatus.Created, (await Create(a)).Status);

        var read = await Store.GetApprovalAsync("acme", a.Id);

        Assert.NotNull(read);
        Assert.Equal(a.Id, read.Id);
        Assert.Equal(a.JobHash, read.JobHash);
        Assert.Equal(a.ExpiresAt, read.ExpiresAt);
        Assert.Equal("""{"amount":12.50,"to":"ACME-1"}""", read.Job.Payload.GetRawText());
        Assert.Equal("acme", await Store.FindTenantAsync(a.Id));
        Assert.Null(await Store.GetApprovalAsync("globex", a.Id));
    }

    [SkippableFact]
    public async Task Same_idempotency_key_creates_once()
    {
        var first = NewApproval(idempotencyKey: "k1");
        var second = NewApproval(idempotencyKey: "k1");

        Assert.Equal(CreateStatus.Created, (await Create(first)).Status);
        var again = await Create(second);

        Assert.Equal(CreateStatus.Duplicate, again.Status);
        Assert.Equal("approval:" + first.Id, again.ExistingReference);
        Assert.Null(await Store.GetApprovalAsync("acme", second.Id));
    }

    [SkippableFact]
    public async Task An_approval_without_a_key_never_touches_an_agents_key_named_dash()
    {
        // "-" is a legal idempotency key; an approval submitted without one must not share its Redis key.
        var keyed = NewApproval(idempotencyKey: "-");
        Assert.Equal(CreateStatus.Created, (await Create(keyed)).Status);
        var keyless = NewApproval();
        Assert.Equal(CreateStatus.Created, (await Create(keyless)).Status);

        Assert.True((await Store.TransitionAsync(Decide(keyless))).Happened);

        // The decision gives its own key the record's retention (30 days); the agent's key keeps its day.
        var ttl = await _connection!.Database.KeyTimeToLiveAsync(RedisKeys.Idempotency("acme", "-"));
        Assert.NotNull(ttl);
        Assert.True(ttl <= TimeSpan.FromDays(1), $"the agent's key '-' now lives {ttl}");
        Assert.Equal("approval:" + keyed.Id, (await Create(NewApproval(idempotencyKey: "-"))).ExistingReference);
    }

    [SkippableFact]
    public async Task Transition_happens_once_and_moves_the_indexes()
    {
        var a = NewApproval();
        await Create(a);

        var first = await Store.TransitionAsync(Decide(a));
        var second = await Store.TransitionAsync(Decide(a));

        Assert.True(first.Happened);
        Assert.Equal(("state", "approved"), (second.Status, second.Value));
        Assert.Empty((await Store.ListAsync("acme", ApprovalStates.Pending, null, 10)).Items);
        Assert.Single((await Store.ListAsync("acme", ApprovalStates.Approved, null, 10)).Items);
        Assert.Empty(await Store.DueTimersAsync("acme", T0.AddDays(3), 10));
        Assert.Equal("alice", (await Store.GetApprovalAsync("acme", a.Id))!.DecidedBy);
    }

    [SkippableFact]
    public async Task Transition_refuses_a_different_job_hash_or_snapshot()
    {
        var a = NewApproval();
        await Create(a);

        Assert.Equal("job_changed", (await Store.TransitionAsync(Decide(a) with { SeenJobHash = new string('9', 64) })).Status);
        Assert.Equal("snapshot_changed", (await Store.TransitionAsync(Decide(a) with { SeenSnapshot = new string('9', 64) })).Status);
        // The tenant has no current policy here, so a check against it fails closed.
        Assert.Equal("snapshot_changed", (await Store.TransitionAsync(Decide(a) with { RequireCurrentPolicy = true })).Status);
        Assert.Equal(ApprovalStates.Pending, (await Store.GetApprovalAsync("acme", a.Id))!.State);
    }

    [SkippableFact]
    public async Task Deadline_decides_between_decision_and_expiry()
    {
        var a = NewApproval();
        await Create(a);

        var early = await Store.TransitionAsync(Decide(a, ApprovalStates.Expired) with { Mode = TransitionMode.Expire });
        var late = await Store.TransitionAsync(Decide(a) with { Now = a.ExpiresAt });
        var expired = await Store.TransitionAsync(Decide(a, ApprovalStates.Expired) with { Mode = TransitionMode.Expire, Now = a.ExpiresAt });

        Assert.Equal("not_due", early.Status);
        Assert.Equal("deadline_passed", late.Status);
        Assert.True(expired.Happened);
    }

    [SkippableFact]
    public async Task Timers_come_due_in_order()
    {
        var a = NewApproval();
        var b = NewApproval(at: T0.AddMinutes(5));
        await Create(a);
        await Create(b);

        Assert.Equal(a.ExpiresAt, await Store.NextTimerAsync("acme"));
        Assert.Empty(await Store.DueTimersAsync("acme", T0.AddHours(23), 10));
        Assert.Equal([RedisKeys.ExpireTimer(a.Id)], await Store.DueTimersAsync("acme", a.ExpiresAt, 10));
        Assert.Equal(2, (await Store.DueTimersAsync("acme", b.ExpiresAt, 10)).Count);
    }

    [SkippableFact]
    public async Task List_pages_oldest_first_without_gaps_or_repeats()
    {
        var created = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            var a = NewApproval(at: T0.AddSeconds(i % 3)); // equal scores on purpose
            await Create(a);
            created.Add(a.Id);
        }
        var seen = new List<string>();
        string? cursor = null;
        do
        {
            var page = await Store.ListAsync("acme", ApprovalStates.Pending, cursor, 3);
            seen.AddRange(page.Items.Select(i => i.Id));
            cursor = page.NextCursor;
        }
        while (cursor is not null);

        var expected = created.Select((id, i) => (id, i)).OrderBy(x => x.i % 3).ThenBy(x => x.id, StringComparer.Ordinal).Select(x => x.id);
        Assert.Equal(expected, seen);
    }

    [SkippableFact]
    public async Task Throttle_admits_the_limit_then_says_when_to_retry()
    {
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await Store.ThrottleAsync("acme", "r", 3, TimeSpan.FromMinutes(1), T0.AddSeconds(i))).Admitted);
        }
        var refused = await Store.ThrottleAsync("acme", "r", 3, TimeSpan.FromMinutes(1), T0.AddSeconds(10));
        Assert.False(refused.Admitted);
        Assert.Equal(TimeSpan.FromSeconds(50), refused.RetryAfter);
        Assert.True((await Store.ThrottleAsync("acme", "r", 3, TimeSpan.FromMinutes(1), T0.AddSeconds(61))).Admitted);
    }

    private static ReviewerPortal.Features.Notifications.Notification Note(string approvalId, string kind) => new()
    {
        Id = ReviewerPortal.Features.Notifications.Notification.NewId(T0),
        Kind = kind,
        Tenant = "acme",
        ApprovalId = approvalId,
        Subject = kind,
        Message = kind,
        At = T0,
    };

    [SkippableFact]
    public async Task Create_writes_the_step_timer_and_the_notification_with_the_approval()
    {
        var a = NewApproval() with { NextStep = "reminder", NextStepAt = T0.AddHours(1), LevelStartedAt = T0 };
        var note = Note(a.Id, "approval_requested");

        await Store.CreateApprovalAsync(a, TimeSpan.FromDays(2), TimeSpan.FromDays(1), "{}", [note]);

        var db = _connection!.Database;
        Assert.Equal(["step|" + a.Id], (await Store.DueTimersAsync("acme", T0.AddHours(1), 10)).Where(m => m.StartsWith("step|")).ToArray());
        Assert.Equal(note.Id, (string?)(await db.SortedSetRangeByRankAsync(RedisKeys.NotifyOutbox("acme")))[0]);
        Assert.Contains("approval_requested", (string?)await db.HashGetAsync(RedisKeys.NotifyBodies("acme"), note.Id));
        var read = await Store.GetApprovalAsync("acme", a.Id);
        Assert.Equal("reminder", read!.NextStep);
        Assert.Equal(T0.AddHours(1), read.NextStepAt);
    }

    [SkippableFact]
    public async Task Guarded_transition_moves_timers_and_writes_notifications_once()
    {
        var a = NewApproval() with { NextStep = "reminder", NextStepAt = T0.AddHours(1), LevelStartedAt = T0 };
        await Create(a);
        TransitionRequest Remind() => new()
        {
            Tenant = "acme",
            ApprovalId = a.Id,
            From = ApprovalStates.Pending,
            To = ApprovalStates.Pending,
            ExpectedSeq = 0,
            Now = T0.AddHours(1),
            Mode = TransitionMode.Update,
            Guard = new("nextStepAt", RedisApprovalStore.Ms(T0.AddHours(1))),
            AddTimers = [new(T0.AddHours(2), RedisKeys.StepTimer(a.Id))],
            Fields = [new("nextStepAt", RedisApprovalStore.Ms(T0.AddHours(2))), new("remindersSent", "1")],
            Notifications = [Note(a.Id, "reminder")],
            AuditJson = "{}",
        };

        var first = await Store.TransitionAsync(Remind());
        var second = await Store.TransitionAsync(Remind());

        Assert.True(first.Happened);
        Assert.Equal("stale", second.Status);
        Assert.Equal(1, (await Store.GetApprovalAsync("acme", a.Id))!.RemindersSent);
        Assert.Equal(1, await _connection!.Database.SortedSetLengthAsync(RedisKeys.NotifyOutbox("acme")));
        Assert.DoesNotContain(await Store.DueTimersAsync("acme", T0.AddHours(1.5), 10), m => m.StartsWith("step|"));
        Assert.Single(await Store.DueTimersAsync("acme", T0.AddHours(2), 10), m => m.StartsWith("step|"));

        var decided = await Store.TransitionAsync(Decide(a, seq: 1));
        Assert.True(decided.Happened);
        Assert.Empty(await Store.DueTimersAsync("acme", T0.AddDays(2), 10)); // every timer of the approval left with it
    }

    [SkippableFact]
    public async Task Transition_fenced_on_a_seq_that_moved_on_changes_nothing()
    {
        var a = NewApproval() with { NextStep = "reminder", NextStepAt = T0.AddHours(1), LevelStartedAt = T0 };
        await Create(a);
        var db = _connection!.Database;
        // Another holder moved the approval on (seq 0 -> 1) while this caller still held what it read at seq 0.
        Assert.True((await Store.TransitionAsync(Decide(a, ApprovalStates.Pending) with { Mode = TransitionMode.Update, ClearTimers = false, Retention = null, Fields = [] })).Happened);
        var outbox = await db.ListLengthAsync(RedisKeys.AuditOutbox("acme"));

        var stale = await Store.TransitionAsync(Decide(a) with { Dispatch = true });

        Assert.Equal("stale", stale.Status);
        Assert.Equal("1", stale.Value);
        var read = await Store.GetApprovalAsync("acme", a.Id);
        Assert.Equal(ApprovalStates.Pending, read!.State);
        Assert.Null(read.DecidedBy);
        Assert.Equal(outbox, await db.ListLengthAsync(RedisKeys.AuditOutbox("acme")));
        Assert.Equal(0, await db.SortedSetLengthAsync(RedisKeys.DispatchOutbox("acme")));
        Assert.Contains(RedisKeys.StepTimer(a.Id), await Store.DueTimersAsync("acme", T0.AddHours(1), 10)); // its timers stay
        Assert.True((await Store.TransitionAsync(Decide(a, seq: 1))).Happened);
    }

    [SkippableFact]
    public async Task Index_pruning_drops_only_entries_whose_record_is_gone_and_that_are_old_enough()
    {
        var live = NewApproval(at: T0);
        var gone = NewApproval(at: T0);
        var young = NewApproval(at: T0.AddHours(5));
        foreach (var a in new[] { live, gone, young })
        {
            await Create(a);
        }
        await _connection!.Database.KeyDeleteAsync(RedisKeys.Approval("acme", gone.Id)); // past its retention
        await _connection.Database.KeyDeleteAsync(RedisKeys.Approval("acme", young.Id)); // as if its create were still under way

        Assert.Equal(1, await Store.PruneIndexAsync(T0.AddHours(1), CancellationToken.None));

        Assert.Equal("acme", await Store.FindTenantAsync(live.Id));
        Assert.Null(await Store.FindTenantAsync(gone.Id));
        Assert.Equal("acme", await Store.FindTenantAsync(young.Id));
    }

    [SkippableFact]
    public async Task Timer_moves_only_while_it_is_due_when_it_was_seen()
    {
        var a = NewApproval();
        await Create(a);
        var seen = a.ExpiresAt.ToUnixTimeMilliseconds();
        // Rescheduled by a newer version meanwhile: the stale holder's removal changes nothing.
        await _connection!.Database.SortedSetAddAsync(RedisKeys.Timers("acme"), RedisKeys.ExpireTimer(a.Id), seen + 1000);

        Assert.False(await Store.MoveTimerAsync("acme", RedisKeys.ExpireTimer(a.Id), seen, null));
        Assert.Single(await Store.DueTimerEntriesAsync("acme", a.ExpiresAt.AddSeconds(1), 10));
        Assert.True(await Store.MoveTimerAsync("acme", RedisKeys.ExpireTimer(a.Id), seen + 1000, a.ExpiresAt.AddHours(1)));
        Assert.Empty(await Store.DueTimerEntriesAsync("acme", a.ExpiresAt.AddMinutes(59), 10));
        Assert.True(await Store.MoveTimerAsync("acme", RedisKeys.ExpireTimer(a.Id), a.ExpiresAt.AddHours(1).ToUnixTimeMilliseconds(), null));
        Assert.Empty(await Store.DueTimerEntriesAsync("acme", a.ExpiresAt.AddDays(9), 10));
    }

    [SkippableFact]
    public async Task Case_script_creates_once_and_moves_only_from_the_sequence_it_read()
    {
        var cases = new ReviewerPortal.Features.Cases.CaseStore(_connection!);
        var c = new ReviewerPortal.Features.Cases.ComplianceCase
        {
            Id = ApprovalIds.NewCaseId(T0),
            Tenant = "acme",
            Subject = "KYC",
            State = ReviewerPortal.Features.Cases.CaseStates.DocumentsRequested,
            Submitter = "agent-1",
            OpenedAt = T0,
            ClosesAt = T0.AddDays(60),
            MaxIterations = 5,
            DocumentDeadline = TimeSpan.FromDays(14),
            OnDocumentTimeout = "reject",
            Iterations = [new() { Number = 1, RequestedDocuments = ["passport"], RequestedAt = T0, DocumentsDueAt = T0.AddDays(14) }],
        };
        Skip.If(_store is null, TestServers.RedisInstallHint);

        Assert.Equal("ok", (await cases.SaveAsync(c, null, "{}", [], T0, "case-k", TimeSpan.FromDays(1))).Status);
        var again = await cases.SaveAsync(c with { Id = ApprovalIds.NewCaseId(T0) }, null, "{}", [], T0, "case-k", TimeSpan.FromDays(1));
        Assert.Equal(("duplicate", c.Id), again);
        var read = await cases.GetAsync("acme", c.Id);
        Assert.Equal(1, read!.Seq);
        Assert.Equal(["case|" + c.Id], await Store.DueTimersAsync("acme", T0.AddDays(14), 10));

        var moved = read with { State = ReviewerPortal.Features.Cases.CaseStates.Approved };
        Assert.Equal("ok", (await cases.SaveAsync(moved, 1, "{}", [], T0, null, TimeSpan.Zero)).Status);
        Assert.Equal("stale", (await cases.SaveAsync(moved, 1, "{}", [], T0, null, TimeSpan.Zero)).Status);
        Assert.Empty(await Store.DueTimersAsync("acme", T0.AddDays(90), 10)); // a closed case has no deadline
        Assert.Equal(ReviewerPortal.Features.Cases.CaseStates.Approved, (await cases.GetAsync("acme", c.Id))!.State);
    }

    [SkippableFact]
    public async Task Lock_is_exclusive_and_released_only_by_its_holder()
    {
        var locks = new RedisLockFactory(_connection!, Options.Create(new RedisOptions()));
        Skip.If(_store is null, TestServers.RedisInstallHint);
        RedisKey key = "{acme}:lock:test";

        var first = await locks.TryAcquireAsync(key, CancellationToken.None);
        var second = await locks.TryAcquireAsync(key, CancellationToken.None, TimeSpan.FromMilliseconds(150));
        Assert.NotNull(first);
        Assert.Null(second);
        await first.DisposeAsync();
        var third = await locks.TryAcquireAsync(key, CancellationToken.None, TimeSpan.FromMilliseconds(150));
        Assert.NotNull(third);
        await third.DisposeAsync();
    }
}

public sealed class GarnetApprovalStoreTests : ApprovalStoreContractTests
{
    protected override async Task<string?> EndpointAsync() => await TestServers.GarnetAsync();
}

public sealed class RedisServerApprovalStoreTests : ApprovalStoreContractTests
{
    protected override Task<string?> EndpointAsync() => TestServers.RedisAsync();
}

/// <summary>The same contract on a real 3-master Redis Cluster: every script's keys share the tenant's slot.</summary>
public sealed class RedisClusterApprovalStoreTests : ApprovalStoreContractTests
{
    protected override Task<string?> EndpointAsync() => TestServers.RedisClusterAsync();
}
