using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Timers;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Dispatch;

/// <summary>
/// Publishes allowed and approved jobs to the tenant's sink, from the outbox the approval wrote in its own atomic
/// step. A Redis sink receives each job exactly once (push and mark in one script); a webhook receives it at least
/// once with the job id as <c>Idempotency-Key</c>, so consumers deduplicate. Jobs that were dispatched but never
/// reported on are replayed with the same job id; every publish, replay and failure is audited.
/// </summary>
public sealed class Dispatcher(
    RedisConnection redis,
    TenantStore tenants,
    AuditLog audit,
    Counters counters,
    RedisLockFactory locks,
    DispatchSignal signal,
    IHttpClientFactory httpFactory,
    IOptions<DispatchOptions> options,
    TimeProvider time,
    ILogger<Dispatcher> logger) : DueWorkService(signal, time, logger)
{
    public const string HttpClientName = "dispatch";

    private IDatabase Db => redis.Database;

    protected override bool Enabled => options.Value.Enabled;

    /// <summary>Publishes what is due and replays what is stuck; returns when the next one is due.</summary>
    protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            var settings = await tenants.GetSettingsAsync(tenant);
            var now = Time.GetUtcNow();
            // Each job under its own lock; many at once, so their audit rows share the writer's group commits.
            await Parallel.ForEachAsync(await DueAsync(RedisKeys.DispatchOutbox(tenant), now),
                new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                async (member, ct) => await PublishAsync(settings, tenant, member, replay: false, ct));
            await Parallel.ForEachAsync(await DueAsync(RedisKeys.Unacknowledged(tenant), now),
                new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                async (member, ct) => await PublishAsync(settings, tenant, member, replay: true, ct));
            foreach (var key in new[] { RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant) })
            {
                var first = await Db.SortedSetRangeByRankWithScoresAsync(key, 0, 0);
                if (first.Length > 0)
                {
                    next = Earliest(next, DateTimeOffset.FromUnixTimeMilliseconds((long)first[0].Score));
                }
            }
        }
        return next;
    }

    private async Task<IReadOnlyList<string>> DueAsync(RedisKey key, DateTimeOffset now) =>
        [.. (await Db.SortedSetRangeByScoreAsync(key, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: 100)).Select(v => (string)v!)];

    private async Task PublishAsync(TenantSettings? settings, string tenant, string member, bool replay, CancellationToken cancellationToken)
    {
        // Held longer than a webhook call can take, so no other instance starts the same publish meanwhile.
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, "dispatch:" + member), cancellationToken, TimeSpan.Zero,
            lease: options.Value.WebhookTimeout * 2 + TimeSpan.FromSeconds(30));
        if (held is null)
        {
            return; // another instance is publishing it
        }
        var record = RecordKey(tenant, member);
        var fields = (await Db.HashGetAllAsync(record)).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        var sink = settings?.Dispatch;
        if (fields.Count == 0 || sink is null)
        {
            await Db.SortedSetRemoveAsync(RedisKeys.DispatchOutbox(tenant), member);
            await Db.SortedSetRemoveAsync(RedisKeys.Unacknowledged(tenant), member);
            return;
        }
        var dispatchCount = int.TryParse(fields.GetValueOrDefault("dispatchCount"), out var c) ? c : 0;
        if (replay && dispatchCount > options.Value.MaxReplays)
        {
            await MarkStuckAsync(tenant, member, fields, cancellationToken);
            return;
        }
        var now = Time.GetUtcNow();
        var jobId = fields.GetValueOrDefault("jobId") ?? fields["id"]!;
        var message = Message(fields, member, replay, now);

        if (sink.Kind == DispatchSink.Webhook && !await PostAsync(sink, jobId, message, cancellationToken))
        {
            await FailedAsync(tenant, member, fields, replay, cancellationToken);
            return;
        }

        var entry = audit.NewEntry(tenant, "system:dispatcher", replay ? "replayed" : "dispatched");
        entry.ApprovalId = member.StartsWith("approval|", StringComparison.Ordinal) ? fields["id"] : null;
        entry.JobId = jobId;
        entry.JobHash = fields.GetValueOrDefault("jobHash");
        entry.PolicySnapshot = fields.GetValueOrDefault("policySnapshot");
        entry.Details = $"{sink.Kind} {(sink.Kind == DispatchSink.Webhook ? sink.Target : RedisKeys.Sink(tenant, sink.Target).ToString())}";
        var result = await audit.RecordAsync(entry, async json =>
        {
            var reply = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.DispatchPublish,
                [record, RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant),
                    RedisKeys.Sink(tenant, sink.Target)],
                [member, now.ToUnixTimeMilliseconds(), (now + options.Value.AckTimeout).ToUnixTimeMilliseconds(), json,
                    sink.Kind == DispatchSink.Redis ? message : "", replay ? "1" : "0"]));
            return (reply.Status == "ok", reply.Status);
        }, cancellationToken);
        if (result == "ok" && replay && entry.ApprovalId is not null)
        {
            await counters.IncrementAsync(tenant, Counters.ReplayedApproved);
        }
    }

    private async Task<bool> PostAsync(DispatchSink sink, string jobId, string message, CancellationToken cancellationToken)
    {
        try
        {
            using var http = httpFactory.CreateClient(HttpClientName);
            http.Timeout = options.Value.WebhookTimeout;
            using var request = new HttpRequestMessage(HttpMethod.Post, sink.Target)
            {
                Content = new StringContent(message, Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("Idempotency-Key", jobId);
            request.Headers.Add("X-Signature", "sha256=" + Sign(sink.Secret ?? "", message));
            using var response = await http.SendAsync(request, cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            logger.LogInformation("Webhook {Url} unreachable for {JobId}: {Message}", sink.Target, jobId, ex.Message);
            return false;
        }
    }

    public static string Sign(string secret, string body) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(body)));

    private async Task FailedAsync(string tenant, string member, Dictionary<string, string?> fields, bool replay, CancellationToken cancellationToken)
    {
        var attempts = await Db.HashIncrementAsync(RecordKey(tenant, member), "dispatchAttempts");
        var backoff = Backoff.Exponential(attempts, TimeSpan.FromSeconds(1), options.Value.MaxBackoff);
        var retryAt = (Time.GetUtcNow() + backoff).ToUnixTimeMilliseconds();
        await Db.SortedSetAddAsync(replay ? RedisKeys.Unacknowledged(tenant) : RedisKeys.DispatchOutbox(tenant), member, retryAt);
        await counters.IncrementAsync(tenant, Counters.DispatchFailures);
        var entry = audit.NewEntry(tenant, "system:dispatcher", "dispatch_failed");
        entry.ApprovalId = member.StartsWith("approval|", StringComparison.Ordinal) ? fields["id"] : null;
        entry.JobId = fields.GetValueOrDefault("jobId") ?? fields["id"];
        entry.Reason = $"attempt {attempts}; next in {backoff.TotalSeconds:F0} s";
        await audit.AppendAsync(entry, cancellationToken);
    }

    private async Task MarkStuckAsync(string tenant, string member, Dictionary<string, string?> fields, CancellationToken cancellationToken)
    {
        await Db.HashSetAsync(RecordKey(tenant, member), "dispatch", "stuck");
        await Db.SortedSetRemoveAsync(RedisKeys.Unacknowledged(tenant), member);
        var entry = audit.NewEntry(tenant, "system:dispatcher", "dispatch_stuck");
        entry.JobId = fields.GetValueOrDefault("jobId") ?? fields["id"];
        entry.Reason = $"no result after {options.Value.MaxReplays} replays";
        await audit.AppendAsync(entry, cancellationToken);
    }

    /// <summary>A worker's report: completed or failed. Idempotent.</summary>
    public async Task<string> RecordResultAsync(string tenant, string jobId, bool completed, string? detail, string actor, CancellationToken cancellationToken)
    {
        var member = (string?)await Db.HashGetAsync(RedisKeys.JobIndex(tenant), jobId);
        if (member is null)
        {
            return "not_found";
        }
        var entry = audit.NewEntry(tenant, actor, completed ? "job_completed" : "job_failed");
        entry.JobId = jobId;
        entry.ApprovalId = member.StartsWith("approval|", StringComparison.Ordinal) ? member["approval|".Length..] : null;
        entry.Reason = detail;
        return await audit.RecordAsync(entry, async json =>
        {
            var reply = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.DispatchResult,
                [RecordKey(tenant, member), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, completed ? "completed" : "failed", Time.GetUtcNow().ToUnixTimeMilliseconds(), json, detail ?? ""]));
            return (reply.Status == "ok", reply.Status == "already" ? "already_" + reply.Value : reply.Status == "state" ? "state_" + reply.Value : reply.Status);
        }, cancellationToken);
    }

    private static RedisKey RecordKey(string tenant, string member) =>
        member.StartsWith("approval|", StringComparison.Ordinal)
            ? RedisKeys.Approval(tenant, member["approval|".Length..])
            : RedisKeys.Job(tenant, member["job|".Length..]);

    /// <summary>The published job: what a worker needs to run it and to prove it was released.</summary>
    private static string Message(Dictionary<string, string?> f, string member, bool replay, DateTimeOffset now)
    {
        var isApproval = member.StartsWith("approval|", StringComparison.Ordinal);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("jobId", isApproval ? f.GetValueOrDefault("jobId") : f.GetValueOrDefault("id"));
            w.WriteString("approvalId", isApproval ? f.GetValueOrDefault("id") : null);
            w.WriteString("tenant", f.GetValueOrDefault("tenant"));
            w.WriteString("topic", f.GetValueOrDefault("topic"));
            w.WriteString("env", f.GetValueOrDefault("env"));
            w.WriteString("channel", f.GetValueOrDefault("channel") is { Length: > 0 } ch ? ch : null);
            w.WriteString("priority", f.GetValueOrDefault("priority"));
            w.WritePropertyName("payload");
            w.WriteRawValue(f.GetValueOrDefault("payload") ?? "{}");
            w.WriteString("jobHash", f.GetValueOrDefault("jobHash"));
            w.WriteString("policySnapshot", f.GetValueOrDefault("policySnapshot"));
            w.WriteBoolean("approvalGranted", isApproval);
            w.WriteString("decidedBy", isApproval ? f.GetValueOrDefault("decidedBy") : null);
            w.WriteBoolean("replay", replay);
            w.WriteString("publishedAt", now);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
