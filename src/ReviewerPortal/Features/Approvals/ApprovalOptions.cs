using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Approvals;

public sealed class ApprovalOptions
{
    public const string Section = "Approvals";

    /// <summary>Long-polls one key or account may hold open at once on an instance; beyond, 429 with Retry-After.</summary>
    [Range(1, 10_000)]
    public int MaxWaitsPerCaller { get; set; } = 100;

    /// <summary>Hub connections one key or account may hold open at once on an instance; beyond, the new one is closed.</summary>
    [Range(1, 1_000)]
    public int MaxHubConnectionsPerCaller { get; set; } = 20;

    /// <summary>Hub negotiations one key or account may start per minute on an instance; beyond, 429 with Retry-After.</summary>
    [Range(1, 100_000)]
    public int MaxHubNegotiationsPerMinute { get; set; } = 120;

    /// <summary>
    /// How often every hub connection's access is re-checked even without an announced change (a role or account edited
    /// behind the app's back); announced changes (approvers saved, keys revoked) are applied within a second.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan HubAccessSweep { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Largest body of a submit or resubmit (the job and its payload); beyond, 400 naming this setting.</summary>
    [Range(1024, 25 * 1024 * 1024)]
    public int MaxSubmitBytes { get; set; } = 1024 * 1024;

    /// <summary>The submit size limit and the setting it comes from, for <c>JsonBody.ReadAsync</c>.</summary>
    public (int Bytes, string Setting) SubmitLimit => (MaxSubmitBytes, $"{Section}:{nameof(MaxSubmitBytes)}");

    /// <summary>Time budget for loading and evaluating the tenant's policy at submit; past it the submit answers 503.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PolicyEvaluationTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long an idempotency key returns the first answer.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "90.00:00:00")]
    public TimeSpan IdempotencyWindow { get; set; } = TimeSpan.FromDays(7);

    /// <summary>A pending approval's Redis key outlives its deadline by this much (a safety net; the deadline set drives expiry).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan ExpirySafetyMargin { get; set; } = TimeSpan.FromDays(1);

    /// <summary>Audit outbox entries older than this are written by the drain (younger ones may still be committing).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan AuditOutboxGrace { get; set; } = TimeSpan.FromSeconds(30);
}
