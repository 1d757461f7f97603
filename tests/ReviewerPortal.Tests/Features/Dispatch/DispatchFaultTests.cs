using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;
using StackExchange.Redis;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>The dispatcher's promises under faults: records that vanish or break, sinks turned off, answers that get lost.</summary>
public sealed class DispatchFaultTests
{
    /// <summary>The dispatcher is run by hand (<see cref="Dispatcher.RunDueAsync"/>), never by its background loop.</summary>
    private static Dictionary<string, string?> ByHand(params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }
        return settings;
    }

    private static async Task SetDispatch(TestApp app, string tenant, object dispatch)
    {
        var put = await app.Account("ada").PutAsJsonAsync($"/api/v1/tenants/{tenant}/settings", new { dispatch });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
    }

    private static Task UseWebhook(TestApp app, string tenant, string url) =>
        SetDispatch(app, tenant, new { kind = "webhook", url, secret = "0123456789abcdef-secret" });

    private static IDatabase Db(TestApp app) => app.Services.GetRequiredService<RedisConnection>().Database;


    private static async Task<string> ApprovedAsync(TestApp app, string tenant, string approver, int amount)
    {
        var id = (await app.Agent(tenant).SubmitPayment(amount)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account(approver).Approve(id)).StatusCode);
        return id;
    }

    /// <summary>The tenant's approval and job keys that have no TTL (each should expire with its retention).</summary>
    private static async Task<List<string>> KeysWithoutTtlAsync(TestApp app, string tenant)
    {
        var multiplexer = app.Services.GetRequiredService<RedisConnection>().Multiplexer;
        var raw = multiplexer.GetDatabase();
        var found = new List<string>();
        await foreach (var key in multiplexer.GetServers()[0].KeysAsync(pattern: $"{app.KeyPrefix}rp:{{{tenant}}}:*", pageSize: 500))
        {
            var name = (string)key!;
            if ((name.Contains(":appr:", StringComparison.Ordinal) || name.Contains(":job:", StringComparison.Ordinal))
                && await raw.KeyExistsAsync(key) && await raw.KeyTimeToLiveAsync(key) is null)
            {
                found.Add(name);
            }
        }
        return found;
    }

    [Fact]
    public async Task Approval_expiring_while_its_webhook_call_hangs_is_audited_lost_and_stops_no_other_tenant()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TestApp? running = null;
        string? expiring = null;
        // While the call is in flight the approval reaches its TTL; then the call fails.
        await using var receiver = WebhookReceiver.Start(respond: async (_, _) =>
        {
            await Db(running!).KeyDeleteAsync(RedisKeys.Approval("acme", expiring!));
            return 503;
        });
        await using var app = await TestApp.StartAsync(clock, settings: ByHand());
        running = app;
        await UseWebhook(app, "acme", receiver.Url);
        await app.UseRedisSinkAsync("globex");
        expiring = await ApprovedAsync(app, "acme", "alice", 11);
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();

        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.Single(receiver.Requests);
        Assert.Empty(await KeysWithoutTtlAsync(app, "acme"));
        Assert.Equal(1, await app.AuditCountAsync(expiring, "dispatch_lost"));
        Assert.Null(await Db(app).SortedSetScoreAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(expiring)));

        // The next pass, past the backoff: globex's approval goes out whatever acme's outbox held.
        var globex = await ApprovedAsync(app, "globex", "gina", 12);
        clock.Advance(TimeSpan.FromSeconds(10));
        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.Equal(globex, Assert.Single(await app.RedisSinkAsync("globex")).Str("approvalId"));
        Assert.Single(receiver.Requests);
        Assert.Empty(await KeysWithoutTtlAsync(app, "acme"));
        Assert.Equal(1, await app.AuditCountAsync(expiring, "dispatch_lost"));
    }

    [Fact]
    public async Task Malformed_outbox_record_is_audited_and_rescheduled_without_stopping_other_jobs()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock, settings: ByHand());
        await app.UseRedisSinkAsync("acme");
        await app.UseRedisSinkAsync("globex");
        var db = Db(app);
        const string poison = "apr_01POISON0000000000000000000";
        var poisonKey = RedisKeys.Approval("acme", poison);
        await db.HashSetAsync(poisonKey, "dispatch", "pending");
        await db.KeyExpireAsync(poisonKey, TimeSpan.FromHours(1));
        await db.SortedSetAddAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(poison), 0); // due first
        var good = await ApprovedAsync(app, "acme", "alice", 21);
        var other = await ApprovedAsync(app, "globex", "gina", 22);
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();

        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.Equal(good, Assert.Single(await app.RedisSinkAsync("acme")).Str("approvalId"));
        Assert.Equal(other, Assert.Single(await app.RedisSinkAsync("globex")).Str("approvalId"));
        Assert.Equal(1, await app.AuditCountAsync(poison, "dispatch_error"));
        var retryAt = await db.SortedSetScoreAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(poison));
        Assert.True(retryAt > clock.GetUtcNow().ToUnixTimeMilliseconds()); // rescheduled with backoff
        Assert.Empty(await KeysWithoutTtlAsync(app, "acme"));

        // Not before its backoff; after it, once more.
        await dispatcher.RunDueAsync(CancellationToken.None);
        Assert.Equal(1, await app.AuditCountAsync(poison, "dispatch_error"));
        clock.Advance(TimeSpan.FromSeconds(10));
        await dispatcher.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, await app.AuditCountAsync(poison, "dispatch_error"));
        Assert.Single(await app.RedisSinkAsync("acme"));
    }

    [Fact]
    public async Task Approved_jobs_wait_parked_while_dispatch_is_off_and_go_out_once_when_a_sink_is_set()
    {
        await using var app = await TestApp.StartAsync(settings: ByHand());
        await app.UseRedisSinkAsync("acme");
        var submitted = await app.Agent("acme").SubmitPayment(31);
        var id = submitted.Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        await SetDispatch(app, "acme", new { kind = "none" });
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();

        await dispatcher.RunDueAsync(CancellationToken.None);
        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.NotNull(await Db(app).SortedSetScoreAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(id)));
        var job = await (await app.Agent("acme").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).Json();
        Assert.Equal("pending", job.Str("dispatch"));
        Assert.Equal(1, await app.AuditCountAsync(id, "dispatch_parked"));
        Assert.Empty(await app.RedisSinkAsync("acme"));

        await app.UseRedisSinkAsync("acme");
        await dispatcher.RunDueAsync(CancellationToken.None);
        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.Equal(submitted.Str("jobId"), Assert.Single(await app.RedisSinkAsync("acme")).Str("jobId"));
        Assert.Equal(1, await app.AuditCountAsync(id, "dispatched"));
        Assert.Equal(1, await app.AuditCountAsync(id, "dispatch_parked"));
        Assert.Null(await Db(app).SortedSetScoreAsync(RedisKeys.DispatchOutbox("acme"), DispatchMember.ForApproval(id)));
    }

    [Fact]
    public async Task Webhook_redelivery_after_a_lost_answer_is_a_replay_with_its_attempt_and_the_first_body()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // The first request arrives, but its 200 only after the dispatcher stopped waiting (the consumer ran the job).
        var late = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var receiver = WebhookReceiver.Start(respond: (_, index) => index == 0 ? late.Task : Task.FromResult(200));
        await using var app = await TestApp.StartAsync(clock, settings: ByHand(("Dispatch:WebhookTimeout", "00:00:01")));
        await UseWebhook(app, "acme", receiver.Url);
        var submitted = await app.Agent("acme").SubmitPayment(41);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(submitted.Str("approvalId"))).StatusCode);
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();

        await dispatcher.RunDueAsync(CancellationToken.None);
        late.SetResult(200);
        clock.Advance(TimeSpan.FromSeconds(10)); // past the backoff
        await dispatcher.RunDueAsync(CancellationToken.None);
        clock.Advance(TimeSpan.FromSeconds(10));
        await dispatcher.RunDueAsync(CancellationToken.None);

        var first = JsonDocument.Parse(receiver.Requests[0].Body).RootElement;
        var second = JsonDocument.Parse(receiver.Requests[1].Body).RootElement;
        Assert.True(second.GetProperty("replay").GetBoolean());
        Assert.Equal(2, second.GetProperty("attempt").GetInt32());
        Assert.Equal("2", receiver.Requests[1].Attempt);
        Assert.False(first.GetProperty("replay").GetBoolean());
        Assert.Equal(1, first.GetProperty("attempt").GetInt32());
        Assert.Equal("1", receiver.Requests[0].Attempt);
        foreach (var field in new[] { "publishedAt", "jobId", "approvalId", "jobHash", "policySnapshot", "decidedBy" })
        {
            Assert.Equal(first.Str(field), second.Str(field));
        }
        Assert.Equal(first.GetProperty("payload").GetRawText(), second.GetProperty("payload").GetRawText());
        Assert.All(receiver.Requests, r => Assert.Equal(submitted.Str("jobId"), r.IdempotencyKey));
        Assert.Equal("sha256=" + Dispatcher.Sign("0123456789abcdef-secret", receiver.Requests[1].Body), receiver.Requests[1].Signature);
        Assert.Equal("dispatched", (await (await app.Agent("acme").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).Json()).Str("dispatch"));
    }

    [Fact]
    public async Task Completed_job_is_never_marked_stuck_by_a_replay_that_read_it_before_the_result()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock, settings: ByHand(("Dispatch:MaxReplays", "0"), ("Dispatch:AckTimeout", "00:01:00")));
        await app.UseRedisSinkAsync("acme");
        var submitted = await app.Agent("acme").SubmitPayment(51);
        var id = submitted.Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();
        await dispatcher.RunDueAsync(CancellationToken.None);
        var result = await app.Agent("acme").PostAsJsonAsync($"/api/v1/jobs/{submitted.Str("jobId")}/result", new { status = "completed" });
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);

        // A replay pass on another instance read the unacknowledged set before the result took the job out of it.
        await Db(app).SortedSetAddAsync(RedisKeys.Unacknowledged("acme"), DispatchMember.ForApproval(id), clock.GetUtcNow().ToUnixTimeMilliseconds());
        clock.Advance(TimeSpan.FromMinutes(2));
        await dispatcher.RunDueAsync(CancellationToken.None);

        Assert.Equal("completed", (await (await app.Agent("acme").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).Json()).Str("dispatch"));
        Assert.Equal(0, await app.AuditCountAsync(id, "dispatch_stuck"));
        Assert.Single(await app.RedisSinkAsync("acme"));
        Assert.Null(await Db(app).SortedSetScoreAsync(RedisKeys.Unacknowledged("acme"), DispatchMember.ForApproval(id)));
    }
}
