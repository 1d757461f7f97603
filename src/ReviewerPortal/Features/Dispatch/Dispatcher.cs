using System.Diagnostics;
using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
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
/// reported on are replayed with the same job id; every publish, replay, failure, parking and loss is audited.
/// </summary>
/// <remarks>
/// Every change to a job's record is a script that first checks the record still exists (it has a TTL), so a record
/// that expired mid-call is never brought back as a fragment without one; it is taken out of the sets and audited
/// <c>dispatch_lost</c>. Each attempt is counted before it is made: any delivery after the first is marked a replay
/// (<c>"replay": true</c>, <c>"attempt": N</c>, <c>X-Delivery-Attempt: N</c>) and carries the first one's body.
/// One job's or one tenant's trouble is logged, audited and retried with backoff; it never stops the others.
/// </remarks>
public sealed partial class Dispatcher(
    RedisConnection redis,
    TenantStore tenants,
    Infrastructure.Secrets.TenantSecrets secrets,
    AuditLog audit,
    Counters counters,
    RedisLockFactory locks,
    DispatchSignal signal,
    IHttpClientFactory httpFactory,
    IOptions<DispatchOptions> options,
    TimeProvider time,
    Observability.PortalMetrics metrics,
    ILogger<Dispatcher> logger) : DueWorkService(signal, time, logger)
{
    public const string HttpClientName = "dispatch";

    /// <summary>The score of a parked member (its tenant has no sink): past every due time, until a sink is set again.</summary>
    public const long ParkedScore = 1_000_000_000_000_000;

    /// <summary>A record that cannot be published (required fields missing) is tried this many times, then marked stuck.</summary>
    public const int MaxMalformedRetries = 10;

    private const string Actor = "system:dispatcher";

    private readonly ConcurrentDictionary<string, int> _tenantFailures = new(StringComparer.Ordinal);

    private IDatabase Db => redis.Database;

    protected override bool Enabled => options.Value.Enabled;

    /// <summary>Publishes what is due and replays what is stuck, tenant by tenant; returns when the next one is due.</summary>
    protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            try
            {
                next = Earliest(next, await RunTenantAsync(tenant, cancellationToken));
                _tenantFailures.TryRemove(tenant, out _);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // This tenant's trouble (settings unreadable, a set that cannot be read) delays this tenant only.
                var failures = _tenantFailures.AddOrUpdate(tenant, 1, (_, n) => n + 1);
                var wait = Backoff.Exponential(failures, TimeSpan.FromSeconds(1), options.Value.MaxBackoff);
                logger.LogWarning(ex, "Dispatch pass over tenant {Tenant} failed ({Failures} in a row); again in {Wait}", tenant, failures, wait);
                next = Earliest(next, Time.GetUtcNow() + wait);
            }
        }
        return next;
    }

    private async Task<DateTimeOffset?> RunTenantAsync(string tenant, CancellationToken cancellationToken)
    {
        var settings = await tenants.GetSettingsAsync(tenant);
        var now = Time.GetUtcNow();
        var outbox = RedisKeys.DispatchOutbox(tenant);
        var unacked = RedisKeys.Unacknowledged(tenant);
        if (settings?.Dispatch is not null)
        {
            // A sink is set (again): what was parked without one is due now.
            await Db.ScriptEvaluateAsync(LuaScripts.DispatchUnpark, [outbox, unacked], [ParkedScore, now.ToUnixTimeMilliseconds()]);
        }
        DateTimeOffset? next = null;
        foreach (var (set, replay) in new[] { (outbox, false), (unacked, true) })
        {
            // Each job under its own lock; many at once, so their audit rows share the writer's group commits.
            await Parallel.ForEachAsync(await DueAsync(set, now),
                new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken },
                async (member, ct) => await PublishAsync(settings, tenant, member, replay, ct));
            var first = await Db.SortedSetRangeByScoreWithScoresAsync(set, double.NegativeInfinity, ParkedScore, Exclude.Stop, take: 1);
            if (first.Length > 0)
            {
                next = Earliest(next, DateTimeOffset.FromUnixTimeMilliseconds((long)first[0].Score));
            }
        }
        return next;
    }

    private async Task<IReadOnlyList<string>> DueAsync(RedisKey key, DateTimeOffset now) =>
        [.. (await Db.SortedSetRangeByScoreAsync(key, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: 100)).Select(v => (string)v!)];

    private async Task PublishAsync(TenantSettings? settings, string tenant, string member, bool replay, CancellationToken cancellationToken)
    {
        try
        {
            // Held longer than a webhook call can take, so no other instance starts the same publish meanwhile.
            await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, "dispatch:" + member), cancellationToken, TimeSpan.Zero,
                lease: options.Value.WebhookTimeout * 2 + TimeSpan.FromSeconds(30));
            if (held is null)
            {
                return; // another instance is publishing it
            }
            try
            {
                await PublishHeldAsync(settings, tenant, member, replay, cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // One job's trouble never stops another: logged, audited and tried again after a backoff.
                logger.LogWarning(ex, "Publishing {Member} of tenant {Tenant} failed", member, tenant);
                await ErrorAsync(tenant, member, replay, null, $"{ex.GetType().Name}: {ex.Message}", giveUp: false, cancellationToken);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Not even the error could be recorded (Redis or the audit database away): the member stays due.
            logger.LogWarning(ex, "Could not publish or reschedule {Member} of tenant {Tenant}; the next pass tries again", member, tenant);
        }
    }

    private async Task PublishHeldAsync(TenantSettings? settings, string tenant, string member, bool replay, CancellationToken cancellationToken)
    {
        var record = RecordKey(tenant, member);
        var fields = (await Db.HashGetAllAsync(record)).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        // The worker's part of the agent's trace: under the context stored at submit (the webhook request and the
        // sink message carry this activity's traceparent on).
        using var span = Observability.PortalTracing.StartContinuing(replay ? "dispatch replay" : "dispatch publish", ActivityKind.Producer,
            fields.GetValueOrDefault("traceparent") is { Length: > 0 } stored ? stored : null,
            tags: [("reviewerportal.tenant", tenant), ("reviewerportal.job_id", JobId(fields, member))]);
        if (fields.Count == 0)
        {
            await LostAsync(tenant, member, replay, fields, cancellationToken);
            return;
        }
        var sink = settings?.Dispatch;
        if (sink is null)
        {
            await ParkAsync(tenant, member, replay, fields, cancellationToken);
            return;
        }
        if (Malformed(fields, member) is { } problem)
        {
            await ErrorAsync(tenant, member, replay, fields, "malformed record: " + problem, giveUp: true, cancellationToken);
            return;
        }
        var dispatchCount = int.TryParse(fields.GetValueOrDefault("dispatchCount"), out var c) ? c : 0;
        if (replay && dispatchCount > options.Value.MaxReplays)
        {
            await MarkStuckAsync(tenant, member, fields, cancellationToken);
            return;
        }

        // The attempt is counted before it is made: should its answer be lost, the next one is a replay.
        var now = Time.GetUtcNow();
        var counted = Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchAttempt,
            [record, RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant)],
            [member, replay ? "1" : "0", now.ToUnixTimeMilliseconds()]));
        if (counted[0] != "ok")
        {
            await NotDueAsync(tenant, member, replay, fields, counted, cancellationToken);
            return;
        }
        var attempt = int.Parse(counted[1]!, CultureInfo.InvariantCulture);
        var publishedAt = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(counted[2]!, CultureInfo.InvariantCulture));
        var jobId = JobId(fields, member)!;
        var message = Message(fields, member, attempt, publishedAt,
            Observability.PortalTracing.CurrentTraceParent() ?? (fields.GetValueOrDefault("traceparent") is { Length: > 0 } tp ? tp : null));

        if (sink.Kind == DispatchSink.Webhook
            && !await PostAsync(sink with { Secret = secrets.Reveal(tenant, sink.Secret) }, jobId, attempt, message, cancellationToken))
        {
            await FailedAsync(tenant, member, replay, fields, cancellationToken);
            return;
        }

        var entry = NewEntry(tenant, replay ? "replayed" : "dispatched", member, fields);
        entry.JobHash = fields.GetValueOrDefault("jobHash");
        entry.PolicySnapshot = fields.GetValueOrDefault("policySnapshot");
        entry.Details = $"{sink.Kind} {(sink.Kind == DispatchSink.Webhook ? sink.Target : RedisKeys.Sink(tenant, sink.Target).ToString())}; attempt {attempt}";
        var result = await audit.RecordAsync(entry, async json =>
        {
            var reply = Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchPublish,
                [record, RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant),
                    RedisKeys.Sink(tenant, sink.Target)],
                [member, now.ToUnixTimeMilliseconds(), (now + options.Value.AckTimeout).ToUnixTimeMilliseconds(), json,
                    sink.Kind == DispatchSink.Redis ? message : "", replay ? "1" : "0"]));
            return (reply[0] == "ok", reply);
        }, cancellationToken);
        if (result[0] == "ok")
        {
            metrics.Dispatched(tenant, replay ? "replayed" : "published");
            if (replay && entry.ApprovalId is not null)
            {
                await counters.IncrementAsync(tenant, Counters.ReplayedApproved);
            }
            return;
        }
        await NotDueAsync(tenant, member, replay, fields, result, cancellationToken);
    }

    private async Task<bool> PostAsync(DispatchSink sink, string jobId, int attempt, string message, CancellationToken cancellationToken)
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
            request.Headers.Add("X-Delivery-Attempt", attempt.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add("X-Signature", "sha256=" + Sign(sink.Secret ?? "", message));
            using var response = await http.SendAsync(request, cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested
                                   && ex.InnerException is not Infrastructure.Outbound.OutboundRefusedException)
        {
            // (An address the outbound rules refuse is not the sink failing: it throws on, into a dispatch_error naming why.)
            logger.LogInformation("Webhook {Url} unreachable for {JobId} (attempt {Attempt}): {Message}", sink.Target, jobId, attempt, ex.Message);
            return false;
        }
    }

    public static string Sign(string secret, string body) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(body)));

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
        entry.ApprovalId = DispatchMember.ApprovalIdOf(member);
        entry.Reason = detail;
        return await audit.RecordAsync(entry, async json =>
        {
            var reply = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.DispatchResult,
                [RecordKey(tenant, member), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, completed ? "completed" : "failed", Time.GetUtcNow().ToUnixTimeMilliseconds(), json, detail ?? ""]));
            return (reply.Status == "ok", reply.Status == "already" ? "already_" + reply.Value : reply.Status == "state" ? "state_" + reply.Value : reply.Status);
        }, cancellationToken);
    }

    private static RedisKey RecordKey(string tenant, string member) => DispatchMember.RecordKey(tenant, member);

    /// <summary>The published job: what a worker needs to run it and to prove it was released.</summary>
    /// <remarks>Every delivery of one publication has the same body but for <c>replay</c> and <c>attempt</c>.</remarks>
    private static string Message(Dictionary<string, string?> f, string member, int attempt, DateTimeOffset publishedAt, string? traceParent)
    {
        var isApproval = DispatchMember.ApprovalIdOf(member) is not null;
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
            w.WriteBoolean("replay", attempt > 1);
            w.WriteNumber("attempt", attempt);
            w.WriteString("publishedAt", publishedAt);
            if (traceParent is not null)
            {
                w.WriteString("traceparent", traceParent); // the worker continues the agent's trace from here
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
