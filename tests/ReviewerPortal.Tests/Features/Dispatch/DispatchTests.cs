using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>Publish once after approval, replay what got stuck, and the worker's side of the contract.</summary>
public sealed class DispatchTests
{
    /// <summary>
    /// Dispatcher passes until the sink holds <paramref name="count"/> messages, then two more, so a second publish
    /// would show. With the app's own background dispatcher running, a pass of ours can find a job under its lock and
    /// return before that publish lands: the sink is read after the job is out, not after a fixed number of passes.
    /// </summary>
    private static async Task<List<JsonElement>> PublishedAsync(TestApp app, int count = 1)
    {
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while ((await app.RedisSinkAsync()).Count < count && DateTime.UtcNow < deadline)
        {
            await dispatcher.RunDueAsync(CancellationToken.None);
            await Task.Delay(20);
        }
        await dispatcher.RunDueAsync(CancellationToken.None);
        await dispatcher.RunDueAsync(CancellationToken.None);
        return await app.RedisSinkAsync();
    }

    [Fact]
    public async Task Twenty_parallel_approves_publish_the_job_once_with_approval_granted()
    {
        await using var app = await TestApp.StartAsync();
        await app.UseRedisSinkAsync();
        var submitted = await app.Agent("acme").SubmitPayment(20);
        var id = submitted.Str("approvalId");

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => app.Account(i % 2 == 0 ? "alice" : "bob").Approve(id)));
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));

        var message = Assert.Single(await PublishedAsync(app));
        Assert.Equal(submitted.Str("jobId"), message.Str("jobId"));
        Assert.Equal(id, message.Str("approvalId"));
        Assert.True(message.GetProperty("approvalGranted").GetBoolean());
        Assert.Equal(submitted.Str("jobHash"), message.Str("jobHash"));
        Assert.Contains(message.Str("decidedBy"), new[] { "alice", "bob" });
        var stats = await (await app.Account("oscar").GetAsync("/api/v1/stats?tenant=acme")).Json();
        Assert.Equal(19, stats.GetProperty("counters").GetProperty("already_approved").GetInt64());
    }

    [Fact]
    public async Task Allowed_jobs_are_published_too_and_rejected_ones_never()
    {
        await using var app = await TestApp.StartAsync();
        await app.UseRedisSinkAsync();
        var allowed = await (await app.Agent("acme").Submit(new { topic = "knowledge.read", env = "production", payload = new { q = 1 } })).Json();
        var rejected = (await app.Agent("acme").SubmitPayment(1)).Str("approvalId");
        await app.Account("alice").Reject(rejected);

        var message = Assert.Single(await PublishedAsync(app));
        Assert.Equal(allowed.Str("jobId"), message.Str("jobId"));
        Assert.False(message.GetProperty("approvalGranted").GetBoolean());
    }

    [Fact]
    public async Task App_stopped_between_approval_and_publish_publishes_once_after_restart()
    {
        var data = TestServers.NewTempDirectory("dispatch-restart");
        var prefix = $"d{Guid.NewGuid():N}:";
        string jobId;
        await using (var first = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix,
                         settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" }))
        {
            await first.UseRedisSinkAsync();
            var submitted = await first.Agent("acme").SubmitPayment(3);
            jobId = submitted.Str("jobId");
            Assert.Equal(HttpStatusCode.OK, (await first.Account("alice").Approve(submitted.Str("approvalId"))).StatusCode);
            Assert.Empty(await first.RedisSinkAsync());
        }

        await using var second = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix);

        Assert.Equal(jobId, Assert.Single(await PublishedAsync(second)).Str("jobId"));
    }

    [Fact]
    public async Task Webhook_offline_during_approval_gets_the_job_once_when_it_returns_signed_and_keyed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var receiver = WebhookReceiver.Start(failFirst: 3);
        await using var app = await TestApp.StartAsync(clock,
            settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" });
        var put = await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { dispatch = new { kind = "webhook", url = receiver.Url, secret = "0123456789abcdef-secret" } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var submitted = await app.Agent("acme").SubmitPayment(4);
        await app.Account("alice").Approve(submitted.Str("approvalId"));
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();

        for (var i = 0; i < 6; i++)
        {
            await dispatcher.RunDueAsync(CancellationToken.None);
            clock.Advance(TimeSpan.FromSeconds(10)); // past each backoff
        }

        Assert.Equal(4, receiver.Requests.Count); // 3 refused while "offline", then delivered, then nothing more
        var delivered = receiver.Requests[^1];
        Assert.Equal(submitted.Str("jobId"), delivered.IdempotencyKey);
        Assert.Equal("sha256=" + Dispatcher.Sign("0123456789abcdef-secret", delivered.Body), delivered.Signature);
        Assert.All(receiver.Requests, r => Assert.Equal(submitted.Str("jobId"), r.IdempotencyKey));
        var stats = await (await app.Account("ada").GetAsync("/api/v1/stats?tenant=acme")).Json();
        Assert.Equal(3, stats.GetProperty("counters").GetProperty("dispatch_failures").GetInt64());
    }

    [Fact]
    public async Task Dispatched_job_without_a_result_is_replayed_with_the_same_job_id_until_reported()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var app = await TestApp.StartAsync(clock,
            settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false", ["Dispatch:AckTimeout"] = "00:01:00" });
        await app.UseRedisSinkAsync();
        var submitted = await app.Agent("acme").SubmitPayment(5);
        await app.Account("alice").Approve(submitted.Str("approvalId"));
        var dispatcher = app.Services.GetRequiredService<Dispatcher>();
        await dispatcher.RunDueAsync(CancellationToken.None);

        clock.Advance(TimeSpan.FromMinutes(2));
        await dispatcher.RunDueAsync(CancellationToken.None);

        var messages = await app.RedisSinkAsync();
        Assert.Equal(2, messages.Count);
        Assert.All(messages, m => Assert.Equal(submitted.Str("jobId"), m.Str("jobId"))); // a consumer can tell by job id
        Assert.Single(messages, m => m.GetProperty("replay").GetBoolean());

        var job = await (await app.Agent("acme").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).Json();
        Assert.Equal("dispatched", job.Str("dispatch"));
        Assert.True(job.GetProperty("approvalGranted").GetBoolean());
        var result = await app.Agent("acme").PostAsJsonAsync($"/api/v1/jobs/{submitted.Str("jobId")}/result", new { status = "completed" });
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        var again = await app.Agent("acme").PostAsJsonAsync($"/api/v1/jobs/{submitted.Str("jobId")}/result", new { status = "completed" });
        Assert.Equal("already_completed", (await again.Json()).Str("result"));
        Assert.Equal("completed", (await (await app.Agent("acme").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).Json()).Str("dispatch"));
        Assert.Equal(HttpStatusCode.NotFound, (await app.Agent("globex").GetAsync($"/api/v1/jobs/{submitted.Str("jobId")}")).StatusCode);
        clock.Advance(TimeSpan.FromMinutes(5));
        await dispatcher.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, (await app.RedisSinkAsync()).Count);
        var stats = await (await app.Account("ada").GetAsync("/api/v1/stats?tenant=acme")).Json();
        Assert.Equal(1, stats.GetProperty("counters").GetProperty("replayed_approved").GetInt64());
        var audit = await (await app.Account("ada").GetAsync($"/api/v1/audit?approvalId={submitted.Str("approvalId")}")).Json();
        Assert.Equal(["submitted", "approved", "dispatched", "replayed", "job_completed"],
            audit.GetProperty("items").EnumerateArray().Select(e => e.Str("action")));
    }

    [Fact]
    public async Task Side_effect_key_returns_the_first_result_and_requires_an_approved_job()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var submitted = await agent.SubmitPayment(6);
        var id = submitted.Str("approvalId");

        var early = await agent.PostAsJsonAsync("/api/v1/side-effects", new { approvalId = id, actionId = "pay", result = new { tx = "T1" } });
        Assert.Equal(HttpStatusCode.Conflict, early.StatusCode);
        await app.Account("alice").Approve(id);

        var first = await agent.PostAsJsonAsync("/api/v1/side-effects",
            new { approvalId = id, actionId = "pay", result = new { tx = "T1" }, jobHash = submitted.Str("jobHash"), policySnapshot = submitted.Str("policySnapshot") });
        var second = await agent.PostAsJsonAsync("/api/v1/side-effects", new { approvalId = id, actionId = "pay", result = new { tx = "T2" } });
        var tampered = await agent.PostAsJsonAsync("/api/v1/side-effects", new { approvalId = id, actionId = "refund", result = 1, jobHash = new string('e', 64) });

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        var body = await second.Json();
        Assert.False(body.GetProperty("firstTime").GetBoolean());
        Assert.Equal("T1", body.GetProperty("result").Str("tx"));
        Assert.Equal(HttpStatusCode.Conflict, tampered.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await app.Agent("globex").PostAsJsonAsync("/api/v1/side-effects",
            new { approvalId = id, actionId = "pay", result = 1 })).StatusCode);
    }
}
