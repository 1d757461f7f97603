using System.Text.Json;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Cases;

public static class CaseStates
{
    public const string DocumentsRequested = "documents_requested";
    public const string InReview = "in_review";
    public const string Approved = "approved";
    public const string Rejected = "rejected";
    public const string Escalated = "escalated";

    public static bool IsOpen(string state) => state is DocumentsRequested or InReview;
}

public static class CaseDecisions
{
    public const string Approve = "approve";
    public const string Reject = "reject";
    public const string Escalate = "escalate";
    public const string RequestDocuments = "request_documents";

    public static readonly IReadOnlyList<string> All = [Approve, Reject, Escalate, RequestDocuments];
}

/// <summary>One loop of a case: documents requested → documents submitted → a reviewer's decision.</summary>
public sealed record CaseIteration
{
    public required int Number { get; init; }
    public required IReadOnlyList<string> RequestedDocuments { get; init; }
    public required DateTimeOffset RequestedAt { get; init; }
    public required DateTimeOffset DocumentsDueAt { get; init; }
    public string? RequestedBy { get; init; }
    public string? RequestNote { get; init; }
    public JsonElement? Documents { get; init; }
    public DateTimeOffset? SubmittedAt { get; init; }
    public string? Decision { get; init; }
    public string? DecidedBy { get; init; }
    public string? Reason { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
}

/// <summary>
/// A multi-step compliance case (the seeds' Temporal workflow, on Redis timers): it loops documents requested →
/// documents submitted → reviewer decision up to <see cref="MaxIterations"/> times within <see cref="ClosesAt"/>,
/// each document request with its own deadline, and ends approved, rejected or escalated.
/// </summary>
public sealed record ComplianceCase
{
    public required string Id { get; init; }
    public required string Tenant { get; init; }
    public required string Subject { get; init; }
    public required string State { get; init; }
    public required string Submitter { get; init; }
    public required DateTimeOffset OpenedAt { get; init; }
    public required DateTimeOffset ClosesAt { get; init; }
    public required int MaxIterations { get; init; }
    public required TimeSpan DocumentDeadline { get; init; }

    /// <summary><c>reject</c> (default) or <c>escalate</c> when a document request's deadline passes.</summary>
    public required string OnDocumentTimeout { get; init; }
    public IReadOnlyList<CaseIteration> Iterations { get; init; } = [];
    public string? OutcomeReason { get; init; }
    public DateTimeOffset? ClosedAt { get; init; }
    public int Seq { get; init; }

    /// <summary>The key the case was opened with (kept so an export can carry it to another deployment).</summary>
    public string? IdempotencyKey { get; init; }

    public int Iteration => Iterations.Count;
    public CaseIteration Current => Iterations[^1];

    /// <summary>The next deadline that acts on the case: the document request's, or the end of the window.</summary>
    public DateTimeOffset? NextDeadline => State switch
    {
        CaseStates.DocumentsRequested => Current.DocumentsDueAt < ClosesAt ? Current.DocumentsDueAt : ClosesAt,
        CaseStates.InReview => ClosesAt,
        _ => null,
    };
}

/// <summary>Cases in Redis beside the tenant's approvals, sharing its timer set and outboxes (one hash tag).</summary>
public sealed class CaseStore(RedisConnection redis)
{
    private IDatabase Db => redis.Database;

    public async Task<ComplianceCase?> GetAsync(string tenant, string id)
    {
        var fields = await Db.HashGetAsync(RedisKeys.Case(tenant, id), ["data", "seq"]);
        if (fields[0].IsNullOrEmpty)
        {
            return null;
        }
        var parsed = JsonSerializer.Deserialize((string)fields[0]!, AppJsonContext.Default.ComplianceCase)!;
        return parsed with { Seq = (int)fields[1] };
    }

    public Task RemoveTimerAsync(string tenant, string id) => Db.SortedSetRemoveAsync(RedisKeys.Timers(tenant), RedisKeys.CaseTimer(id));

    public Task IndexAsync(string tenant, string id) => Db.HashSetAsync(RedisKeys.ApprovalIndex, id, tenant);

    public async Task<string?> FindTenantAsync(string id) => await Db.HashGetAsync(RedisKeys.ApprovalIndex, id);

    public async Task<string?> IdempotentAsync(string tenant, string key) => await Db.StringGetAsync(RedisKeys.Idempotency(tenant, "case:" + key));

    public async Task<IReadOnlyList<ComplianceCase>> ListAsync(string tenant, int limit)
    {
        var ids = await Db.SortedSetRangeByRankAsync(RedisKeys.Cases(tenant), 0, limit - 1, Order.Descending);
        var loaded = await Task.WhenAll(ids.Select(id => GetAsync(tenant, (string)id!)));
        return [.. loaded.Where(c => c is not null).Select(c => c!)];
    }

    /// <summary>Writes the case if its sequence is still <paramref name="expectedSeq"/> (null: creates it); answers the script's status.</summary>
    public async Task<(string Status, string? Value)> SaveAsync(ComplianceCase c, int? expectedSeq, string auditJson, IReadOnlyList<Notification> notifications,
        DateTimeOffset now, string? idempotencyKey, TimeSpan idempotencyTtl)
    {
        var args = new List<RedisValue>
        {
            expectedSeq is { } seq ? seq.ToString() : "",
            c.State,
            JsonSerializer.Serialize(c with { Seq = 0 }, AppJsonContext.Default.ComplianceCase),
            auditJson,
            RedisKeys.CaseTimer(c.Id),
            c.NextDeadline is { } due ? due.ToUnixTimeMilliseconds() : "",
            now.ToUnixTimeMilliseconds(),
            c.Id,
            c.OpenedAt.ToUnixTimeMilliseconds(),
            idempotencyKey is null ? "" : c.Id,
            (long)idempotencyTtl.TotalMilliseconds,
            notifications.Count,
        };
        foreach (var n in notifications)
        {
            args.Add(n.Id);
            args.Add(n.ToJson());
        }
        return LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.CaseUpdate,
        [
            RedisKeys.Case(c.Tenant, c.Id), RedisKeys.Timers(c.Tenant), RedisKeys.AuditOutbox(c.Tenant), RedisKeys.NotifyOutbox(c.Tenant),
            RedisKeys.NotifyBodies(c.Tenant), RedisKeys.Cases(c.Tenant), RedisKeys.IdempotencyOrNone(c.Tenant, idempotencyKey is null ? null : "case:" + idempotencyKey),
        ], [.. args]));
    }
}
