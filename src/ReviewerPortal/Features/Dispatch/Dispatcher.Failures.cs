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

public sealed partial class Dispatcher
{
    /// <summary>The sink refused or did not answer: count it and try again after a backoff (never gives up).</summary>
    private async Task FailedAsync(string tenant, string member, bool replay, Dictionary<string, string?> fields, CancellationToken cancellationToken)
    {
        var reply = await RescheduleAsync(tenant, member, replay, "deliveryFailures", giveUpAfter: 0);
        if (reply[0] != "retry")
        {
            await NotDueAsync(tenant, member, replay, fields, reply, cancellationToken);
            return;
        }
        metrics.Dispatched(tenant, "failed");
        await counters.IncrementAsync(tenant, Counters.DispatchFailures);
        var entry = NewEntry(tenant, "dispatch_failed", member, fields);
        entry.Reason = $"attempt {reply[1]}; next in {Seconds(reply[2])} s";
        await audit.AppendAsync(entry, cancellationToken);
    }

    /// <summary>Publishing it threw, or its record is malformed: audited and tried again after a backoff.</summary>
    private async Task ErrorAsync(string tenant, string member, bool replay, Dictionary<string, string?>? fields, string reason, bool giveUp,
        CancellationToken cancellationToken)
    {
        var reply = await RescheduleAsync(tenant, member, replay, "dispatchErrors", giveUp ? MaxMalformedRetries : 0);
        fields ??= [];
        if (reply[0] is not ("retry" or "stuck"))
        {
            await NotDueAsync(tenant, member, replay, fields, reply, cancellationToken);
            return;
        }
        metrics.Dispatched(tenant, reply[0] == "stuck" ? "stuck" : "error");
        var entry = NewEntry(tenant, reply[0] == "stuck" ? "dispatch_stuck" : "dispatch_error", member, fields);
        entry.Reason = reply[0] == "stuck"
            ? $"given up after {reply[1]} errors; last: {reason}"
            : $"error {reply[1]}: {reason}; next in {Seconds(reply[2])} s";
        await audit.AppendAsync(entry, cancellationToken);
    }

    private async Task<string?[]> RescheduleAsync(string tenant, string member, bool replay, string counter, int giveUpAfter) =>
        Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchFail,
            [RecordKey(tenant, member), RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant)],
            [member, replay ? "1" : "0", Time.GetUtcNow().ToUnixTimeMilliseconds(), 1000,
                (long)options.Value.MaxBackoff.TotalMilliseconds, counter, giveUpAfter]));

    /// <summary>Only a job still <c>dispatched</c> becomes stuck: a result that came in meanwhile stays.</summary>
    private async Task MarkStuckAsync(string tenant, string member, Dictionary<string, string?> fields, CancellationToken cancellationToken)
    {
        var entry = NewEntry(tenant, "dispatch_stuck", member, fields);
        entry.Reason = $"no result after {options.Value.MaxReplays} replays";
        var reply = await audit.RecordAsync(entry, async json =>
        {
            var r = Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchStuck,
                [RecordKey(tenant, member), RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, Time.GetUtcNow().ToUnixTimeMilliseconds(), json]));
            return (r[0] == "ok", r);
        }, cancellationToken);
        if (reply[0] != "ok")
        {
            await NotDueAsync(tenant, member, replay: true, fields, reply, cancellationToken);
            return;
        }
        metrics.Dispatched(tenant, "stuck");
    }

    /// <summary>The tenant has no sink: the job waits in its set, audited the first time, until one is set.</summary>
    private async Task ParkAsync(string tenant, string member, bool replay, Dictionary<string, string?> fields, CancellationToken cancellationToken)
    {
        var entry = NewEntry(tenant, "dispatch_parked", member, fields);
        entry.Reason = replay
            ? "the tenant has no dispatch sink: its replay waits until one is set"
            : "the tenant has no dispatch sink: the job waits in the outbox until one is set";
        var reply = await audit.RecordAsync(entry, async json =>
        {
            var r = Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchPark,
                [RecordKey(tenant, member), RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, replay ? "1" : "0", Time.GetUtcNow().ToUnixTimeMilliseconds(), ParkedScore, json]));
            return (r[0] == "parked", r);
        }, cancellationToken);
        if (reply[0] is not ("parked" or "still"))
        {
            await NotDueAsync(tenant, member, replay, fields, reply, cancellationToken);
        }
    }

    /// <summary>A script found the job gone or no longer in the state its set stands for (it took the member out).</summary>
    private async Task NotDueAsync(string tenant, string member, bool replay, Dictionary<string, string?> fields, string?[] reply,
        CancellationToken cancellationToken)
    {
        if (reply[0] == "gone")
        {
            await LostAsync(tenant, member, replay, fields, cancellationToken);
            return;
        }
        if (reply[0] == "already" && reply[1] is "dispatched" or "completed" or "failed" or "stuck")
        {
            return; // published meanwhile, or reported on: nothing is dropped
        }
        var entry = NewEntry(tenant, "dispatch_dropped", member, fields);
        entry.Reason = $"publication state '{reply[1]}' ({reply[0]}): taken out of the {(replay ? "replay set" : "outbox")}";
        logger.LogWarning("Dropped {Member} of tenant {Tenant}: {Reason}", member, tenant, entry.Reason);
        await audit.AppendAsync(entry, cancellationToken);
    }

    /// <summary>The record reached its TTL before its publication or its result: taken out of both sets, audited once.</summary>
    private async Task LostAsync(string tenant, string member, bool replay, Dictionary<string, string?> fields, CancellationToken cancellationToken)
    {
        var entry = NewEntry(tenant, "dispatch_lost", member, fields);
        entry.Reason = replay
            ? "the record expired (TTL) while its result was awaited; no more replays"
            : "the record expired (TTL) before the job was published";
        var reply = await audit.RecordAsync(entry, async json =>
        {
            var r = Reply(await Db.ScriptEvaluateAsync(LuaScripts.DispatchForget,
                [RecordKey(tenant, member), RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, json]));
            return (r[0] == "gone", r);
        }, cancellationToken);
        if (reply[0] == "gone")
        {
            logger.LogWarning("Lost {Member} of tenant {Tenant}: {Reason}", member, tenant, entry.Reason);
        }
    }

    private AuditEntry NewEntry(string tenant, string action, string member, Dictionary<string, string?> fields)
    {
        var entry = audit.NewEntry(tenant, Actor, action);
        entry.ApprovalId = DispatchMember.ApprovalIdOf(member);
        entry.JobId = JobId(fields, member);
        return entry;
    }

    private static string? JobId(Dictionary<string, string?> fields, string member) =>
        DispatchMember.ApprovalIdOf(member) is not null
            ? fields.GetValueOrDefault("jobId")
            : fields.GetValueOrDefault("id") ?? DispatchMember.JobIdOf(member);

    /// <summary>What a record lacks to be published, or null.</summary>
    private static string? Malformed(Dictionary<string, string?> f, string member) =>
        f.GetValueOrDefault("id") is not { Length: > 0 } ? "no id"
        : f.GetValueOrDefault("jobHash") is not { Length: > 0 } ? "no jobHash"
        : DispatchMember.ApprovalIdOf(member) is not null && f.GetValueOrDefault("jobId") is not { Length: > 0 } ? "no jobId"
        : null;

    private static string?[] Reply(RedisResult result) => [.. ((RedisResult[])result!).Select(r => (string?)r)];

    private static string Seconds(string? ms) =>
        (long.TryParse(ms, out var value) ? value / 1000.0 : 0).ToString("F0", CultureInfo.InvariantCulture);
}
