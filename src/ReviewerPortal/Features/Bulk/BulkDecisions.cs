using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Bulk;

/// <summary>One approval to decide in bulk, with the job hash and policy snapshot the reviewer saw (drift answers 409 for it).</summary>
public sealed record BulkTarget(string Id, string? JobHash, string? PolicySnapshot);

/// <summary>One selected approval as it is now (masked for people), why it would fail if it would, and its value of the totalled field.</summary>
public sealed record BulkPreviewItem(Approval Approval, string? Problem, decimal? Value)
{
    public bool WouldFail => Problem is not null;
}

/// <summary>What a bulk decision would do: the items, the total of a named payload field over those that would be decided.</summary>
public sealed record BulkPreview(Verdict Verdict, IReadOnlyList<BulkPreviewItem> Items, string? TotalField, decimal? Total, string? TotalNote)
{
    public int Count => Items.Count;
    public int Failing => Items.Count(i => i.WouldFail);
    public IReadOnlyList<BulkTarget> Targets => [.. Items.Select(i => new BulkTarget(i.Approval.Id, i.Approval.JobHash, i.Approval.PolicySnapshot))];
}

/// <summary>
/// Bulk decisions for the portal's queue and <c>POST /api/v1/approvals/bulk</c>: each item is decided on its own through
/// <see cref="ApprovalService.DecideAsync"/> (its lock, fence, job hash, eligibility, four-eyes, quorum and audit row,
/// <c>via: bulk</c>), one after the other; one item's failure never stops the others.
/// </summary>
public sealed class BulkDecisions(
    ApprovalService approvals,
    IApprovalStore store,
    TenantStore tenants,
    TenantAccess access,
    PolicyStore policies,
    TimeProvider time,
    IOptions<BulkOptions> options,
    ILogger<BulkDecisions> logger)
{
    public const string Via = "bulk";

    public int MaxItems => options.Value.MaxItems;

    /// <summary>Decides every item in order; each answers what the single approve / reject endpoint would.</summary>
    public async Task<IReadOnlyList<BulkItemResult>> DecideAsync(Caller caller, Verdict verdict, string? reason, IReadOnlyList<BulkTarget> items,
        CancellationToken cancellationToken)
    {
        var results = new List<BulkItemResult>(items.Count);
        foreach (var item in items)
        {
            try
            {
                var outcome = await approvals.DecideAsync(caller, item.Id, verdict,
                    new DecideCommand(reason, item.JobHash, item.PolicySnapshot, Via: Via), cancellationToken);
                results.Add(ResultOf(item.Id, outcome, verdict));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A store fault on one item is that item's 503; the others are still decided.
                logger.LogWarning(ex, "Bulk decision of {ApprovalId} failed", item.Id);
                results.Add(new BulkItemResult(item.Id, StatusCodes.Status503ServiceUnavailable, "unavailable", "store_unavailable",
                    "The store was unavailable for this item; nothing was decided for it. Retry."));
            }
        }
        return results;
    }

    /// <summary>The single endpoint's status code and code for one outcome (see <c>ApprovalsApi.ToResult</c>).</summary>
    public static BulkItemResult ResultOf(string id, DecisionOutcome outcome, Verdict verdict)
    {
        var a = outcome.Approval;
        return outcome.Kind switch
        {
            Outcome.Ok => new(id, 200, outcome.Code ?? (verdict == Verdict.Approve ? ApprovalStates.Approved : ApprovalStates.Rejected), outcome.Code,
                outcome.Detail, a?.State),
            Outcome.AlreadyDone => new(id, 200, outcome.Code!, outcome.Code, outcome.Detail, a?.State),
            Outcome.NotFound => new(id, 404, "not_found", "not_found", "No such approval."),
            Outcome.Forbidden => new(id, 403, "refused", outcome.Code, outcome.Detail, a?.State),
            Outcome.Conflict => new(id, 409, "conflict", outcome.Code, outcome.Detail, a?.State, a?.JobHash, a?.PolicySnapshot),
            Outcome.Locked => new(id, 423, "locked", outcome.Code, outcome.Detail),
            _ => new(id, 503, "unavailable", outcome.Code ?? "unavailable", outcome.Detail),
        };
    }

    /// <summary>
    /// The pending approvals of <paramref name="tenant"/> that match, oldest first, among the oldest
    /// <see cref="BulkOptions.FilterScanLimit"/>; null when the caller may not read the tenant (a 404, never a 403).
    /// </summary>
    public async Task<IReadOnlyList<Approval>?> SelectAsync(Caller caller, string tenant, BulkSelection selection)
    {
        if (!await access.CanReadAsync(caller, tenant))
        {
            return null;
        }
        var now = time.GetUtcNow();
        var matches = new List<Approval>();
        const int chunkSize = 500;
        for (var start = 0; start < options.Value.FilterScanLimit; start += chunkSize)
        {
            var chunk = await store.PendingRangeAsync(tenant, start, Math.Min(chunkSize, options.Value.FilterScanLimit - start));
            matches.AddRange(chunk.Where(a => selection.Matches(a, now)));
            if (chunk.Count < chunkSize)
            {
                break;
            }
        }
        return matches;
    }

    /// <summary>
    /// What deciding these approvals would do, read fresh: each one as it now is (masked for people) and why it would
    /// fail (gone, no longer pending, expired, not an approver at its level, the caller's own request, the policy changed),
    /// and the total of <paramref name="totalField"/> (a payload path such as <c>amount</c>) over those that would be decided.
    /// A field the tenant masks is never totalled.
    /// </summary>
    public async Task<BulkPreview> PreviewAsync(Caller caller, IReadOnlyList<string> ids, Verdict verdict, string? totalField)
    {
        totalField = string.IsNullOrWhiteSpace(totalField) ? null : totalField.Trim();
        var now = time.GetUtcNow();
        var settingsOf = new Dictionary<string, TenantSettings?>(StringComparer.Ordinal);
        var snapshotOf = new Dictionary<string, string?>(StringComparer.Ordinal);
        var items = new List<BulkPreviewItem>();
        bool masked = false, missing = false;
        foreach (var id in ids.Distinct(StringComparer.Ordinal))
        {
            var approval = await approvals.GetAsync(caller, id);
            if (approval is null)
            {
                continue; // gone (purged) or not readable: nothing to show, never a hint that it exists
            }
            if (!settingsOf.TryGetValue(approval.Tenant, out var settings))
            {
                settingsOf[approval.Tenant] = settings = await tenants.GetSettingsAsync(approval.Tenant);
                snapshotOf[approval.Tenant] = await policies.GetCurrentSnapshotAsync(approval.Tenant);
            }
            var shown = settings is null ? approval : PayloadMasking.Mask(approval, settings.Redaction.Fields);
            var problem = await ProblemOfAsync(caller, approval, settings, snapshotOf[approval.Tenant], verdict, now);
            decimal? value = null;
            if (totalField is not null && problem is null)
            {
                switch (ValueAt(shown.Job.Payload, totalField))
                {
                    case { ValueKind: JsonValueKind.Number } number when number.TryGetDecimal(out var d):
                        value = d;
                        break;
                    case { ValueKind: JsonValueKind.String } text when text.GetString() == PayloadMasking.Marker:
                        masked = true;
                        break;
                    default:
                        missing = true;
                        break;
                }
            }
            items.Add(new BulkPreviewItem(shown, problem, value));
        }
        if (totalField is null)
        {
            return new BulkPreview(verdict, items, null, null, null);
        }
        if (masked)
        {
            return new BulkPreview(verdict, items, totalField, null, $"{totalField} is masked for this tenant: not totalled.");
        }
        var values = items.Where(i => i.Value is not null).ToList();
        var note = missing ? $"{items.Count(i => !i.WouldFail) - values.Count} of the items to decide have no number at {totalField}." : null;
        return new BulkPreview(verdict, items, totalField, values.Count == 0 ? null : values.Sum(i => i.Value!.Value), note);
    }

    private async Task<string?> ProblemOfAsync(Caller caller, Approval approval, TenantSettings? settings, string? currentSnapshot, Verdict verdict, DateTimeOffset now)
    {
        if (settings is null)
        {
            return "The tenant is not configured.";
        }
        if (approval.State != ApprovalStates.Pending)
        {
            return $"Already {approval.State}.";
        }
        if (now >= approval.ExpiresAt)
        {
            return "Expired.";
        }
        // The decision path's own check: eligibility at the escalation level, an away approver's delegate, four eyes.
        var right = await access.DecisionRightAsync(caller, settings, approval, verdict == Verdict.Approve);
        if (right.Code is "requester_may_not_approve")
        {
            return "Your own request: someone else must approve it (four-eyes).";
        }
        if (right.Code is not null)
        {
            return approval.EscalationLevel > 0
                ? $"You are not an approver at escalation level {approval.EscalationLevel}."
                : "You are not an approver of this tenant.";
        }
        if (verdict == Verdict.Approve && currentSnapshot is not null && currentSnapshot != approval.PolicySnapshot)
        {
            return "The policy changed since it was submitted: re-evaluate it first.";
        }
        if (settings.Workflow.Quorum is not null
            && approval.Votes.Any(v => v.By == caller.Name && v.Verdict == (verdict == Verdict.Approve ? "approve" : "reject")))
        {
            return "Your vote on it is already counted.";
        }
        return null;
    }

    /// <summary>The value at a dotted path of the payload (<c>amount</c>, <c>invoice.total</c>), or default when there is none.</summary>
    public static JsonElement ValueAt(JsonElement payload, string path)
    {
        var current = payload;
        foreach (var part in path.Split('.'))
        {
            if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(part, out current))
            {
                return default;
            }
        }
        return current;
    }

    public static string FormatTotal(decimal total) => total.ToString("#,##0.##", CultureInfo.InvariantCulture);
}

/// <summary>A filter over pending approvals (the API's <c>filter</c>, the queue's "select all matching").</summary>
public sealed record BulkSelection(string? Topic = null, string? Env = null, TimeSpan? OlderThan = null, string? Risk = null)
{
    public bool Matches(Approval approval, DateTimeOffset now)
    {
        if (Topic is { Length: > 0 } topic && !(topic.EndsWith('*')
                ? approval.Job.Topic.StartsWith(topic[..^1], StringComparison.Ordinal)
                : approval.Job.Topic == topic))
        {
            return false;
        }
        if (Env is { Length: > 0 } env && !string.Equals(approval.Job.Env, env, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (OlderThan is { } age && now - (approval.VersionSubmittedAt ?? approval.CreatedAt) < age)
        {
            return false;
        }
        return Risk is not { Length: > 0 } risk || approval.Job.Priority == risk;
    }
}
