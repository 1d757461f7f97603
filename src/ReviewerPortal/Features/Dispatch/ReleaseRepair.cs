using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Dispatch;

/// <summary>
/// Puts back a release that Redis lost half of. A decision writes the record's <c>dispatch: pending</c> and the
/// outbox entry the dispatcher reads in one script, and a publish writes <c>dispatched</c> and the unacknowledged
/// entry likewise; but Garnet logs a script's writes one by one, so a server killed and restarted on its append-only
/// log can come back with the record and without the entry. Such a job would never be published (or never replayed).
/// The audit reconciler asks here for every audited release it reads whose set entry is missing; the entry is put back
/// with a <c>release_restored</c> entry in the same step, so each loss is repaired and audited once whichever
/// instance finds it. The dispatcher then publishes the job exactly as it would have.
/// </summary>
public sealed class ReleaseRepair(
    RedisConnection redis,
    AuditLog audit,
    IOptions<DispatchOptions> options,
    TimeProvider time,
    ILogger<ReleaseRepair> logger)
{
    public const string Action = "release_restored";
    private const string Actor = "system:reconciler";

    private IDatabase Db => redis.Database;

    /// <summary>
    /// Of the given records (outbox members of one tenant), the ones whose <c>dispatch</c> state has no entry in the
    /// set that carries it; one pipelined round of reads. The repair itself checks again, atomically.
    /// </summary>
    public async Task<IReadOnlyList<string>> MissingAsync(string tenant, IReadOnlyList<string> members)
    {
        var states = await Task.WhenAll(members.Select(m => Db.HashGetAsync(DispatchMember.RecordKey(tenant, m), "dispatch")));
        var checks = members.Select((m, i) => (string?)states[i] switch
        {
            "pending" => Db.SortedSetScoreAsync(RedisKeys.DispatchOutbox(tenant), m),
            "dispatched" => Db.SortedSetScoreAsync(RedisKeys.Unacknowledged(tenant), m),
            _ => Task.FromResult<double?>(0),
        }).ToArray();
        var scores = await Task.WhenAll(checks);
        return [.. members.Where((_, i) => scores[i] is null)];
    }

    /// <summary>Puts the member back in its set if it is still missing there; true when this call did.</summary>
    public async Task<bool> RelinkAsync(string tenant, string member, CancellationToken cancellationToken)
    {
        var entry = audit.NewEntry(tenant, Actor, Action);
        entry.ApprovalId = DispatchMember.ApprovalIdOf(member);
        entry.JobId = DispatchMember.JobIdOf(member);
        entry.Reason = "Redis held the release without its entry in the dispatch sets (a restart replayed only part of the step that wrote both): put back";
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var reply = await audit.RecordAsync(entry, async json =>
        {
            var (status, state) = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.DispatchRelink,
                [DispatchMember.RecordKey(tenant, member), RedisKeys.DispatchOutbox(tenant), RedisKeys.Unacknowledged(tenant), RedisKeys.AuditOutbox(tenant)],
                [member, now, (long)options.Value.AckTimeout.TotalMilliseconds, json]));
            return (status == "relinked", (status, state));
        }, cancellationToken);
        if (reply.status != "relinked")
        {
            return false;
        }
        logger.LogError("Release of {Member} of tenant {Tenant} ({State}) had lost its dispatch entry in Redis; put back",
            member, tenant, reply.state);
        return true;
    }
}
