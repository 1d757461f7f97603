using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Observability;

/// <summary>The <c>Metrics</c> section: the Prometheus scrape endpoint and how often the fleet-wide figures are read.</summary>
public sealed class TelemetryOptions
{
    public const string Section = "Metrics";

    /// <summary>Serve <c>/metrics</c> (Prometheus text format). On by default.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Answer an anonymous scrape from a loopback address (a Prometheus or agent on the same host). Turn off behind a local reverse proxy.</summary>
    public bool AllowLoopback { get; set; } = true;

    /// <summary>A scraper from any other address must send <c>Authorization: Bearer &lt;ScrapeToken&gt;</c>; unset: loopback only.</summary>
    public string? ScrapeToken { get; set; }

    /// <summary>How often the fleet-wide gauges (pending, audit outbox, control-plane counters) are read from Redis; a scrape never reads Redis.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>The <c>Health</c> section: the bounds of <c>/healthz/ready</c>.</summary>
public sealed class HealthOptions
{
    public const string Section = "Health";

    /// <summary>Not ready when the timer service's last completed pass is older than this (it passes at least once a minute).</summary>
    [Range(typeof(TimeSpan), "00:00:05", "1.00:00:00")]
    public TimeSpan TimerPassWithin { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Not ready when the audit outbox's oldest entry (an audit row not yet in the database) is older than this.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "7.00:00:00")]
    public TimeSpan AuditOutboxMaxAge { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long one dependency may take to answer a readiness probe.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan Budget { get; set; } = TimeSpan.FromSeconds(2);
}
