using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Dispatch;

public sealed class DispatchOptions
{
    public const string Section = "Dispatch";

    /// <summary>Run the dispatcher in this instance (any number of instances may; each job is published once).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>A dispatched job not reported on (<c>POST /api/v1/jobs/{id}/result</c>) within this is replayed.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Replays of an unacknowledged job before it is marked stuck (and audited as such).</summary>
    [Range(0, 1000)]
    public int MaxReplays { get; set; } = 10;

    /// <summary>Longest wait between attempts to a failing sink (backoff doubles from 1 s).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Webhook request timeout.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00")]
    public TimeSpan WebhookTimeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Wakes the dispatcher when a release was written to the outbox.</summary>
public sealed class DispatchSignal : Infrastructure.Timers.WakeSignal;
