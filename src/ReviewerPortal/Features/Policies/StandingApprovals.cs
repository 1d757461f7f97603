using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using YamlDotNet.RepresentationModel;

namespace ReviewerPortal.Features.Policies;

/// <summary>A standing approval as the API lists it: an <c>allow</c> rule with <c>until</c> in the tenant's current policy.</summary>
public sealed record StandingApproval(string RuleId, IReadOnlyDictionary<string, string> When, DateTimeOffset Until, bool Active);

public sealed record StandingApprovalList(string Tenant, IReadOnlyList<StandingApproval> Items);

/// <summary>What approve-always did: the decision's outcome, the fields at fault (nothing decided), and the standing approval added.</summary>
public sealed record ApproveAlwaysResult(DecisionOutcome Outcome, IReadOnlyDictionary<string, string[]>? Errors = null, StandingApprovalGranted? Granted = null);

/// <summary>A standing approval just added: its rule, its end, and the policy version that carries it.</summary>
public sealed record StandingApprovalGranted(string RuleId, IReadOnlyDictionary<string, string> When, DateTimeOffset Until, int? PolicyVersion, string Snapshot);

/// <summary>
/// Standing approvals ("approve always", issue 16): time-limited <c>allow</c> rules with <c>until</c>, added to and
/// removed from the tenant's policy as published versions (audited, in the history and the policy diff). Changes are
/// made under one lock per tenant, read-modify-publish, so two grants at once both land. The admin's YAML is kept as
/// written (comments included) where the rule can be appended or cut out and the result means exactly the intended
/// document; otherwise the canonical form is published. Expired rules are inert (the evaluator ignores them) and are
/// pruned at the next grant.
/// </summary>
public sealed class StandingApprovals(PolicyStore policies, PolicyPublisher publisher, RedisLockFactory locks, TimeProvider time,
    ApprovalService approvals, TenantStore tenants)
{
    public const string RulePrefix = "standing-";

    /// <summary>
    /// Approves (through <see cref="ApprovalService.DecideAsync"/>, bound to the job hash the exception is built from) and,
    /// once approved, adds the standing approval. Refused before any decision: a caller who may not approve (403,
    /// audited), a quorum tenant, a window over the tenant's cap or a field that cannot bind it (400 by field).
    /// </summary>
    public async Task<ApproveAlwaysResult> ApproveAlwaysAsync(Caller caller, string id, string? reason, string? jobHash, string? policySnapshot,
        TimeSpan duration, IReadOnlyList<string> fields, string via, CancellationToken cancellationToken)
    {
        var approval = await approvals.GetAsync(caller, id);
        var settings = approval is null ? null : await tenants.GetSettingsAsync(approval.Tenant);
        if (approval is null || settings is null)
        {
            return new ApproveAlwaysResult(DecisionOutcome.NotFound);
        }
        if (await approvals.RefusalToApproveAsync(caller, settings, approval, via, cancellationToken) is { } refused)
        {
            return new ApproveAlwaysResult(refused);
        }
        if (settings.Workflow.Quorum is { Required: > 1 } quorum)
        {
            return new ApproveAlwaysResult(new DecisionOutcome(Outcome.Forbidden, approval, "standing_approval_needs_single_approver",
                $"The tenant needs {quorum.Required} approvers for each job; one person cannot approve future jobs for all of them."));
        }
        var errors = new Dictionary<string, string[]>();
        var cap = settings.Workflow.StandingApprovalMax;
        if (duration < WorkflowSettings.MinStandingApproval || duration > cap)
        {
            errors["for"] = [$"From {DurationText.Format(WorkflowSettings.MinStandingApproval)} to {DurationText.Format(cap)} (the tenant's standingApprovalMax)."];
        }
        var when = new Dictionary<string, string>(StringComparer.Ordinal) { ["topic"] = approval.Job.Topic, ["env"] = approval.Job.Env };
        if (approval.Job.Channel is { } channel)
        {
            when["channel"] = channel;
        }
        var facts = new JobFacts(approval.Job.Topic, approval.Job.Env, approval.Job.Channel, approval.Job.Payload);
        for (var i = 0; i < fields.Count; i++)
        {
            var path = fields[i];
            if (Redaction.PayloadMasking.IsMasked(path["payload.".Length..], settings.Redaction.Fields))
            {
                errors[$"fields[{i}]"] = ["A masked field cannot bind a standing approval: its value would be written into the policy."];
            }
            else if (PolicyEvaluator.ValueOf(path, facts) is not { Length: > 0 } value)
            {
                errors[$"fields[{i}]"] = ["Not a string, number or boolean in this approval's payload."];
            }
            else
            {
                when[path] = value;
            }
        }
        if (when.Values.Any(v => v.Contains('*')))
        {
            errors["fields"] = ["A value holds '*', which a policy reads as a wildcard: no exact standing approval can be written."];
        }
        if (errors.Count > 0)
        {
            return new ApproveAlwaysResult(new DecisionOutcome(Outcome.Conflict, approval), errors);
        }

        var outcome = await approvals.DecideAsync(caller, id, Verdict.Approve,
            new DecideCommand(reason, jobHash ?? approval.JobHash, policySnapshot, Via: via), cancellationToken);
        if (outcome is not { Kind: Outcome.Ok, Approval: { State: ApprovalStates.Approved } decided })
        {
            return new ApproveAlwaysResult(outcome);
        }
        var until = time.GetUtcNow() + duration;
        until = new DateTimeOffset(until.UtcTicks - until.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        var rule = new PolicyRule(RuleIdFor(decided.Id), when, PolicyDecision.Allow, null, null, Until: until);
        return new ApproveAlwaysResult(outcome, Granted: await GrantAsync(decided.Tenant, rule, caller, decided.Id, cancellationToken));
    }

    public static string RuleIdFor(string approvalId) => RulePrefix + approvalId;

    public static IReadOnlyList<StandingApproval> Of(PolicyDocument? document, DateTimeOffset now) =>
        document is null ? [] : [.. document.Rules.Where(r => r.Until is not null).Select(r => new StandingApproval(r.Id, r.When, r.Until!.Value, now < r.Until))];

    public async Task<IReadOnlyList<StandingApproval>> ListAsync(string tenant) =>
        Of((await policies.GetCurrentAsync(tenant))?.Document, time.GetUtcNow());

    /// <summary>Publishes the tenant's policy with <paramref name="rule"/> added (replacing a rule of the same id); null when the tenant has no policy or is busy.</summary>
    public async Task<StandingApprovalGranted?> GrantAsync(string tenant, PolicyRule rule, Caller caller, string approvalId, CancellationToken cancellationToken)
    {
        var result = await RepublishAsync(tenant, caller, current =>
        {
            var now = time.GetUtcNow();
            var dropped = current.Document.Rules.Where(r => r.Id == rule.Id || r.Until is { } until && until <= now).Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
            var target = new PolicyDocument(current.Document.Version, current.Document.Default,
                [.. current.Document.Rules.Where(r => !dropped.Contains(r.Id)), rule]);
            var note = $"standing approval {rule.Id} added by {caller.Name} from {approvalId}: allow {Describe(rule.When)} until {PolicyRule.FormatUntil(rule.Until!.Value)}"
                       + (dropped.Count(d => d != rule.Id) is > 0 and var n ? $"; {n} expired removed" : "");
            return new Change(target, text => Append(Remove(text, dropped), rule), note);
        }, cancellationToken);
        return result?.Snapshot is null ? null : new StandingApprovalGranted(rule.Id, rule.When, rule.Until!.Value, result.Version, result.Snapshot);
    }

    /// <summary>Publishes the tenant's policy without the standing approval; false when there is none of that id.</summary>
    public async Task<bool> RevokeAsync(string tenant, string ruleId, Caller caller, CancellationToken cancellationToken)
    {
        var result = await RepublishAsync(tenant, caller, current =>
        {
            if (current.Document.Rules.FirstOrDefault(r => r.Id == ruleId && r.Until is not null) is not { } rule)
            {
                return null;
            }
            var target = new PolicyDocument(current.Document.Version, current.Document.Default, [.. current.Document.Rules.Where(r => r.Id != ruleId)]);
            var note = $"standing approval {ruleId} revoked by {caller.Name} (allow {Describe(rule.When)} until {PolicyRule.FormatUntil(rule.Until!.Value)})";
            return new Change(target, text => Remove(text, [ruleId]), note);
        }, cancellationToken);
        return result is { Errors.Count: 0 };
    }

    /// <summary>A change of the current policy: the document it makes, the edit of the admin's text that makes it, the audit note.</summary>
    private sealed record Change(PolicyDocument Target, Func<string, string?> Edit, string Note);

    /// <summary>
    /// Publishes <paramref name="change"/> of the tenant's current policy, one change at a time per tenant; an admin's
    /// publication in between is never overwritten: the change is made again on the newer version. Null when the tenant
    /// is busy or has no policy, when <paramref name="change"/> has nothing to change, or after five stale attempts.
    /// </summary>
    private async Task<PublishResult?> RepublishAsync(string tenant, Caller caller, Func<PolicyVersion, Change?> change, CancellationToken cancellationToken)
    {
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, "standing-approvals"), cancellationToken, TimeSpan.FromSeconds(5));
        for (var attempt = 0; held is not null && attempt < 5; attempt++)
        {
            if (await policies.GetCurrentAsync(tenant) is not { } current || change(current) is not { } made)
            {
                return null;
            }
            var result = await publisher.PublishAsync(tenant, Rewrite(current.Yaml, made.Target, made.Edit), caller, cancellationToken, made.Note,
                expectedCurrent: current.Snapshot);
            if (!result.Stale)
            {
                return result;
            }
        }
        return null;
    }

    private static string Describe(IReadOnlyDictionary<string, string> when) =>
        string.Join(", ", when.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));

    /// <summary>The edited text when it means exactly <paramref name="target"/>; otherwise the target's canonical form.</summary>
    private static string Rewrite(string yaml, PolicyDocument target, Func<string, string?> edit)
    {
        try
        {
            if (edit(yaml) is { } edited && PolicyParser.Parse(edited).Document?.Snapshot == target.Snapshot)
            {
                return edited;
            }
        }
        catch (YamlDotNet.Core.YamlException)
        {
        }
        return "# Published from the canonical form when a standing approval was added or removed.\n" + target.CanonicalYaml;
    }

    /// <summary>The rule appended as the last item of a block-style <c>rules:</c> list, in that list's indentation.</summary>
    private static string? Append(string? yaml, PolicyRule rule)
    {
        if (yaml is null)
        {
            return null;
        }
        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root
            || !root.Children.TryGetValue(new YamlScalarNode("rules"), out var node) || node is not YamlSequenceNode { Children.Count: > 0 } list)
        {
            return null;
        }
        var lines = yaml.Split('\n');
        var first = list.Children[0];
        var line = lines[(int)first.Start.Line - 1];
        var prefix = line[..Math.Min(line.Length, (int)first.Start.Column - 1)];
        if (prefix.Trim() != "-")
        {
            return null;
        }
        var indent = new string(' ', prefix.Length);
        var body = rule.CanonicalYaml.TrimEnd('\n').Split('\n');
        var block = string.Join("\n", body.Select((l, i) => (i == 0 ? prefix : indent) + l));
        return yaml.TrimEnd('\n', ' ', '\r') + "\n" + block + "\n";
    }

    /// <summary>The text without the list items whose <c>id</c> is one of <paramref name="ids"/> (each item: its dash line and the lines indented under it).</summary>
    private static string Remove(string yaml, IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0)
        {
            return yaml;
        }
        var lines = yaml.Split('\n').ToList();
        for (var i = 0; i < lines.Count; i++)
        {
            var trimmed = lines[i].TrimStart();
            if (!trimmed.StartsWith("- id:", StringComparison.Ordinal) || !ids.Contains(trimmed["- id:".Length..].Split('#')[0].Trim()))
            {
                continue;
            }
            var dash = lines[i].Length - trimmed.Length;
            var end = i + 1;
            while (end < lines.Count && (lines[end].Trim().Length == 0 || lines[end].Length - lines[end].TrimStart().Length > dash)
                   && !lines[end].TrimStart().StartsWith('#'))
            {
                end++;
            }
            lines.RemoveRange(i, end - i);
            i--;
        }
        return string.Join("\n", lines);
    }
}
