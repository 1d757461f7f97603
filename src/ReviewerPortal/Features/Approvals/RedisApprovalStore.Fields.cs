using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>How an approval and a job are laid out as Redis hash fields, and read back.</summary>
public sealed partial class RedisApprovalStore
{
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
