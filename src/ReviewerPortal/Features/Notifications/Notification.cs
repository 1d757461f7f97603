using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Notifications;

public static class NotificationKinds
{
    public const string ApprovalRequested = "approval_requested";
    public const string Reminder = "reminder";
    public const string Escalation = "escalation";
    public const string Timeout = "timeout";
    public const string Decision = "decision";
    public const string ChangesRequested = "changes_requested";
    public const string DocumentsRequested = "documents_requested";
}

/// <summary>
/// One notification, written to the tenant's outbox in the same atomic step as the transition that causes it and
/// delivered later by <see cref="Notifier"/>. <see cref="Id"/> is the idempotency key of every delivery attempt.
/// </summary>
public sealed record Notification
{
    public required string Id { get; init; }
    public required string Kind { get; init; }
    public required string Tenant { get; init; }
    public string? ApprovalId { get; init; }
    public string? CaseId { get; init; }
    public string? Topic { get; init; }
    public string? State { get; init; }
    public int? Version { get; init; }
    public int? EscalationLevel { get; init; }

    /// <summary>The people notified (user names; e-mail goes to their addresses).</summary>
    public IReadOnlyList<string> Recipients { get; init; } = [];
    public required string Subject { get; init; }
    public required string Message { get; init; }
    public required DateTimeOffset At { get; init; }

    /// <summary>The approval's trace (its submit's W3C <c>traceparent</c>): the delivery continues it.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? TraceParent { get; init; }

    /// <summary>
    /// Each eligible approver's action links (approve, reject, open), added to the webhook's body at delivery for a request
    /// to decide; never stored.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<Approvals.Links.ApproverLinks>? Links { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, AppJsonContext.Default.Notification);

    public static Notification? FromJson(string json) => JsonSerializer.Deserialize(json, AppJsonContext.Default.Notification);

    public static string NewId(DateTimeOffset now) => "ntf_" + Guid.CreateVersion7(now).ToString("N");
}

/// <summary>A delivery attempt that failed (kept, newest first, for the portal and the API).</summary>
public sealed record NotificationFailure(string NotificationId, string Kind, string? ApprovalId, string? CaseId, string Channel,
    string Error, int Attempt, bool GaveUp, DateTimeOffset At);

public sealed record NotificationStatus(string Tenant, long Pending, IReadOnlyList<NotificationFailure> RecentFailures);

public sealed class NotificationOptions
{
    public const string Section = "Notifications";

    /// <summary>Whether this instance delivers notifications (they wait in Redis for any instance that does).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Attempts per notification before it is given up (recorded in the audit history and the portal).</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 8;

    /// <summary>The longest wait between two attempts (the back-off doubles from 2 s up to this).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Time budget of one webhook call or SMTP session.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}
