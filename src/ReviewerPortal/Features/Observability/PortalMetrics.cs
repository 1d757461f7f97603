using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ReviewerPortal.Features.Observability;

/// <summary>
/// The meter <c>ReviewerPortal</c> and its instruments (see README, Operations). Every label is bounded: the tenant, and
/// a word from a fixed list (decision, outcome, result, kind, counter name); never an approval id. Counts are this
/// instance's; the gauges (pending, audit outbox, the control-plane counters) are the fleet's figures read from Redis by
/// <see cref="OperationsSnapshot"/>, so every instance reports the same value for them.
/// </summary>
public sealed class PortalMetrics
{
    public const string MeterName = "ReviewerPortal";

    private readonly Counter<long> _submitted;
    private readonly Counter<long> _decided;
    private readonly Histogram<double> _ageAtDecision;
    private readonly Histogram<double> _wakeLatency;
    private readonly Histogram<double> _timerLag;
    private readonly Histogram<double> _lockWait;
    private readonly Histogram<double> _policyEvaluation;
    private readonly Counter<long> _dispatch;
    private readonly Counter<long> _notifications;
    private readonly ConcurrentDictionary<(string Tenant, string Outcome), long> _decidedTally = new();
    private readonly ConcurrentDictionary<string, TimeSpan> _lastTimerLag = new();

    public PortalMetrics(IMeterFactory meters, OperationsSnapshot snapshot)
    {
        var meter = meters.Create(MeterName);
        _submitted = meter.CreateCounter<long>("reviewerportal.approvals.submitted", "{job}",
            "Jobs submitted, by tenant and the policy's decision (allow, deny, throttle, require_human).");
        _decided = meter.CreateCounter<long>("reviewerportal.approvals.decided", "{approval}",
            "Approvals that left the open states, by tenant and outcome (approved, rejected, expired, timed_out, withdrawn).");
        _ageAtDecision = meter.CreateHistogram<double>("reviewerportal.approvals.age_at_decision", "s",
            "How long an approval waited, from submit (or resubmit) to its outcome.");
        _wakeLatency = meter.CreateHistogram<double>("reviewerportal.approvals.wake_latency", "s",
            "From the decision to the agent being told (channel: wait = the long-poll answer, hub = the SignalR push).");
        _timerLag = meter.CreateHistogram<double>("reviewerportal.timers.lag", "s",
            "From a durable timer's due time to when it fired, by tenant and kind (expire, step, resubmit, case).");
        _lockWait = meter.CreateHistogram<double>("reviewerportal.locks.wait", "s",
            "Time spent acquiring an approval's lock (result: acquired or busy).");
        _policyEvaluation = meter.CreateHistogram<double>("reviewerportal.policy.evaluation", "s",
            "Policy evaluation time at submit, by tenant.");
        _dispatch = meter.CreateCounter<long>("reviewerportal.dispatch", "{job}",
            "Dispatch to the tenant's sink, by tenant and result (published, failed, replayed, stuck).");
        _notifications = meter.CreateCounter<long>("reviewerportal.notifications", "{notification}",
            "Notification deliveries, by tenant and result (delivered, failed, abandoned).");

        meter.CreateObservableGauge("reviewerportal.approvals.pending",
            () => snapshot.Latest.Where(t => t.IsTenant).Select(t => new Measurement<long>(t.Pending, Tenant(t.Tenant))), "{approval}",
            "Approvals waiting for a human, by tenant (fleet-wide, from Redis).");
        meter.CreateObservableGauge("reviewerportal.audit.outbox.depth",
            () => snapshot.Latest.Select(t => new Measurement<long>(t.OutboxDepth, Tenant(t.Tenant))), "{entry}",
            "Audit entries waiting in the Redis outbox for their database row, by tenant.");
        meter.CreateObservableGauge("reviewerportal.audit.outbox.oldest_age",
            () => snapshot.Latest.Select(t => new Measurement<double>((t.OutboxOldestAge ?? TimeSpan.Zero).TotalSeconds, Tenant(t.Tenant))), "s",
            "Age of the oldest audit entry in the outbox, by tenant (0 when empty).");
        // Every name in Counters.All, generically: a counter added there appears here with no more work.
        meter.CreateObservableCounter("reviewerportal.control_plane",
            () => snapshot.Latest.Where(t => t.IsTenant).SelectMany(t => t.Counters.Select(c =>
                new Measurement<long>(c.Value, new KeyValuePair<string, object?>("tenant", t.Tenant), new KeyValuePair<string, object?>("counter", c.Key)))),
            "{event}", "The control-plane counters of /api/v1/stats (fleet-wide, from Redis), by tenant and counter name.");
    }

    private static KeyValuePair<string, object?> Tenant(string tenant) => new("tenant", tenant);

    public void Submitted(string tenant, string decision) =>
        _submitted.Add(1, Tenant(tenant), new KeyValuePair<string, object?>("decision", decision));

    public void Decided(string tenant, string outcome, TimeSpan age)
    {
        _decided.Add(1, Tenant(tenant), new KeyValuePair<string, object?>("outcome", outcome));
        _ageAtDecision.Record(Math.Max(0, age.TotalSeconds), Tenant(tenant), new KeyValuePair<string, object?>("outcome", outcome));
        _decidedTally.AddOrUpdate((tenant, outcome), 1, (_, n) => n + 1);
    }

    public void AgentWoken(string tenant, string channel, TimeSpan latency) =>
        _wakeLatency.Record(Math.Max(0, latency.TotalSeconds), Tenant(tenant), new KeyValuePair<string, object?>("channel", channel));

    public void TimerFired(string tenant, string kind, TimeSpan lag)
    {
        _timerLag.Record(Math.Max(0, lag.TotalSeconds), Tenant(tenant), new KeyValuePair<string, object?>("kind", kind));
        _lastTimerLag[tenant] = lag;
    }

    public void LockWaited(TimeSpan wait, bool acquired) =>
        _lockWait.Record(wait.TotalSeconds, new KeyValuePair<string, object?>("result", acquired ? "acquired" : "busy"));

    public void PolicyEvaluated(string tenant, TimeSpan took) => _policyEvaluation.Record(took.TotalSeconds, Tenant(tenant));

    public void Dispatched(string tenant, string result) =>
        _dispatch.Add(1, Tenant(tenant), new KeyValuePair<string, object?>("result", result));

    public void Notified(string tenant, string result) =>
        _notifications.Add(1, Tenant(tenant), new KeyValuePair<string, object?>("result", result));

    /// <summary>This instance's decided count since it started (what <c>reviewerportal_approvals_decided_total</c> reports), by outcome.</summary>
    public IReadOnlyDictionary<string, long> DecidedOf(string tenant) =>
        _decidedTally.Where(e => e.Key.Tenant == tenant).ToDictionary(e => e.Key.Outcome, e => e.Value);

    /// <summary>The lag of the last timer this instance fired for the tenant (the latest sample of <c>reviewerportal_timers_lag_seconds</c>).</summary>
    public TimeSpan? LastTimerLag(string tenant) => _lastTimerLag.TryGetValue(tenant, out var lag) ? lag : null;

    /// <summary>Elapsed wall time since <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp): measurement, not domain time.</summary>
    public static TimeSpan Since(long started) => Stopwatch.GetElapsedTime(started);
}
