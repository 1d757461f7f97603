using System.Diagnostics;

namespace ReviewerPortal.Features.Observability;

/// <summary>
/// The activity source <c>ReviewerPortal</c>. An approval keeps the W3C <c>traceparent</c> of its submit (the agent's
/// trace), and the steps after the human wait (the decision, the dispatch, the notifications) start activities under
/// that context, so one trace runs agent → policy → wait → reviewer → worker.
/// </summary>
public static class PortalTracing
{
    public const string SourceName = "ReviewerPortal";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The W3C id of the current activity (to store with an approval or pass on), or null when nothing is traced.</summary>
    public static string? CurrentTraceParent() =>
        Activity.Current is { IdFormat: ActivityIdFormat.W3C } current ? current.Id : null;

    /// <summary>
    /// Starts an activity continuing the stored <paramref name="traceParent"/> (as its parent), linked to the activity
    /// under way here (the reviewer's request, say) so both traces lead to each other. Without a stored context it is a
    /// child of the current activity, as usual.
    /// </summary>
    public static Activity? StartContinuing(string name, ActivityKind kind, string? traceParent, DateTimeOffset startTime = default,
        params (string Key, object? Value)[] tags)
    {
        var current = Activity.Current;
        Activity? activity;
        if (traceParent is not null && ActivityContext.TryParse(traceParent, null, isRemote: true, out var parent))
        {
            var links = current is null || current.TraceId == parent.TraceId ? null : new[] { new ActivityLink(current.Context) };
            activity = Source.StartActivity(name, kind, parent, links: links, startTime: startTime);
        }
        else
        {
            activity = Source.StartActivity(name, kind, parentContext: default, startTime: startTime);
        }
        if (activity is not null)
        {
            foreach (var (key, value) in tags)
            {
                activity.SetTag(key, value);
            }
        }
        return activity;
    }

    /// <summary>A finished span for the time an approval waited for a human: from its submit to now, under its stored context.</summary>
    public static void RecordWait(string? traceParent, DateTimeOffset since, DateTimeOffset until, string tenant, string approvalId, string outcome)
    {
        using var wait = StartContinuing("approval wait", ActivityKind.Internal, traceParent, since,
            ("reviewerportal.tenant", tenant), ("reviewerportal.approval_id", approvalId), ("reviewerportal.outcome", outcome));
        wait?.SetEndTime(until.UtcDateTime);
    }
}
