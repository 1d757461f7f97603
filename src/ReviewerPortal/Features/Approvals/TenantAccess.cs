using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Who may read and who may decide a tenant's approvals.</summary>
public sealed class TenantAccess(TenantStore tenants, Delegation.DelegationStore delegations, AccountDirectory accounts)
{
    /// <summary>
    /// Agents read their own tenant; on-call and admins read every tenant; reviewers the tenants they approve for. The
    /// accounts' audit stream (sign-ins, throttling, role changes) only admins read.
    /// </summary>
    public async Task<bool> CanReadAsync(Caller caller, string tenant)
    {
        if (tenant == AccountAudit.Stream)
        {
            return !caller.IsAgent && caller.IsAdmin;
        }
        if (caller.IsAgent)
        {
            return caller.AgentTenant == tenant;
        }
        if (caller.ReadsEveryTenant)
        {
            return await tenants.ExistsAsync(tenant);
        }
        return await tenants.GetSettingsAsync(tenant) is { } settings && await CanReadAsync(caller, settings);
    }

    /// <summary>
    /// <see cref="CanReadAsync(Caller, string)"/> for a tenant whose settings the caller already read (it exists): saves
    /// the decision path a second read of the settings.
    /// </summary>
    public async Task<bool> CanReadAsync(Caller caller, TenantSettings settings)
    {
        if (caller.IsAgent)
        {
            return caller.AgentTenant == settings.Tenant;
        }
        if (caller.ReadsEveryTenant)
        {
            return true;
        }
        return IsApprover(caller, settings) || (caller.IsReviewer && ReadsFor(await delegations.AwayForAsync(caller.Name), settings));
    }

    /// <summary>A delegate reads the tenants of the people away who named them, while they are away.</summary>
    private static bool ReadsFor(IReadOnlyList<Delegation.Delegation> away, TenantSettings settings) => away.Any(d => IsApprover(d.User, settings));

    /// <summary>Deciding takes the reviewer role as well as a place on the tenant's list (on-call and admins decide nothing).</summary>
    public static bool CanDecide(Caller caller, TenantSettings settings) =>
        !caller.IsAgent && caller.IsReviewer && settings.Approvers.Contains(caller.Name, StringComparer.Ordinal);

    /// <summary>The tenant's approvers, and the backups of every escalation level the approval has reached.</summary>
    public static bool CanDecide(Caller caller, TenantSettings settings, Approval approval) =>
        !caller.IsAgent && caller.IsReviewer && settings.EligibleAt(approval.EscalationLevel).Contains(caller.Name, StringComparer.Ordinal);

    /// <summary>
    /// Whether the caller decides the tenant's compliance cases, and in whose seat: an approver as themselves
    /// (<see cref="DecisionRight.Self"/>), or a reviewer for an approver who is away and named them, directly, while that
    /// approver is still a reviewer (<see cref="DecisionRight.For"/>); refused otherwise.
    /// </summary>
    public async Task<DecisionRight> CaseRightAsync(Caller caller, TenantSettings settings, CancellationToken cancellationToken = default)
    {
        if (CanDecide(caller, settings))
        {
            return DecisionRight.Self;
        }
        if ((await AwaySeatsAsync(caller, settings.Approvers, cancellationToken)).FirstOrDefault() is { } seat)
        {
            return DecisionRight.For(seat.Name);
        }
        return DecisionRight.Refused("not_an_approver", $"'{caller.Name}' is not an approver of tenant '{settings.Tenant}'.");
    }

    /// <summary>Approvers and the people of its escalation levels read the tenant.</summary>
    private static bool IsApprover(Caller caller, TenantSettings settings) => IsApprover(caller.Name, settings);

    private static bool IsApprover(string name, TenantSettings settings) => settings.Involves(name);

    /// <summary>
    /// Whether the caller may take this step on the approval, and in whose seat. A person who may decide it decides as
    /// themselves (and never in anyone else's seat). Otherwise a reviewer decides for an approver who is away and named
    /// them (<see cref="Delegation.DelegationStore.AwayForAsync"/>; direct delegations only, never a chain), when that
    /// approver is still a reviewer who may decide it. Four eyes holds for both: approving is refused when the caller
    /// or the person they act for requested it.
    /// </summary>
    public async Task<DecisionRight> DecisionRightAsync(Caller caller, TenantSettings settings, Approval approval, bool approving,
        CancellationToken cancellationToken = default)
    {
        var fourEyes = approving && !settings.Workflow.RequesterMayApprove;
        bool Requested(Caller who) => who.Is(approval.Submitter) || who.Is(approval.RequestedBy);
        if (CanDecide(caller, settings, approval))
        {
            return fourEyes && Requested(caller)
                ? DecisionRight.Refused("requester_may_not_approve", $"'{caller.Name}' requested this action and may not approve it (separation of duties).")
                : DecisionRight.Self;
        }
        var seats = await AwaySeatsAsync(caller, settings.EligibleAt(approval.EscalationLevel), cancellationToken);
        if (seats.Count == 0)
        {
            return DecisionRight.Refused("not_an_approver", approval.EscalationLevel > 0
                ? $"'{caller.Name}' is not an approver of tenant '{approval.Tenant}' at escalation level {approval.EscalationLevel}."
                : $"'{caller.Name}' is not an approver of tenant '{approval.Tenant}'.");
        }
        if (fourEyes && Requested(caller))
        {
            return DecisionRight.Refused("requester_may_not_approve",
                $"'{caller.Name}' requested this action and may not approve it, not even as {seats[0].Name}'s delegate (separation of duties).", seats[0].Name);
        }
        // A vote already cast in one of the seats keeps that seat: one person, one vote.
        var seat = seats.Where(p => !fourEyes || !Requested(p))
            .OrderByDescending(p => approval.Votes.Any(v => v.By == p.Name && v.Delegate == caller.Name))
            .FirstOrDefault();
        return seat is null
            ? DecisionRight.Refused("requester_may_not_approve",
                $"'{seats[0].Name}' requested this action; '{caller.Name}' may not approve it for them (separation of duties).", seats[0].Name)
            : DecisionRight.For(seat.Name);
    }

    /// <summary>
    /// The seats a reviewer may take: the people away right now who named them directly (never a chain), who are among
    /// <paramref name="eligible"/> and still reviewers.
    /// </summary>
    private async Task<IReadOnlyList<Caller>> AwaySeatsAsync(Caller caller, IReadOnlyList<string> eligible, CancellationToken cancellationToken)
    {
        var seats = new List<Caller>();
        if (caller.IsAgent || !caller.IsReviewer)
        {
            return seats;
        }
        foreach (var away in await delegations.AwayForAsync(caller.Name))
        {
            if (eligible.Contains(away.User, StringComparer.Ordinal)
                && await accounts.FindAsync(away.User, cancellationToken) is { IsReviewer: true } person)
            {
                seats.Add(person);
            }
        }
        return seats;
    }

    public async Task<IReadOnlyList<string>> ReadableTenantsAsync(Caller caller)
    {
        if (caller.IsAgent)
        {
            return caller.AgentTenant is null ? [] : [caller.AgentTenant];
        }
        var all = await tenants.ListAsync();
        if (caller.ReadsEveryTenant)
        {
            return all;
        }
        // Whom the caller stands in for is read once for all the tenants, not once per tenant.
        var away = caller.IsReviewer ? await delegations.AwayForAsync(caller.Name) : [];
        var readable = new List<string>();
        foreach (var tenant in all)
        {
            if (await tenants.GetSettingsAsync(tenant) is { } settings && (IsApprover(caller, settings) || ReadsFor(away, settings)))
            {
                readable.Add(tenant);
            }
        }
        return readable;
    }
}

/// <summary>
/// May the caller take the step: <see cref="Code"/> is null when yes; <see cref="ActsFor"/> names the away approver whose
/// seat a delegate takes (null: the caller's own).
/// </summary>
public sealed record DecisionRight(string? Code, string? Detail, string? ActsFor)
{
    public static DecisionRight Self { get; } = new(null, null, null);

    public static DecisionRight For(string user) => new(null, null, user);

    public static DecisionRight Refused(string code, string detail, string? actsFor = null) => new(code, detail, actsFor);

    public bool Allowed => Code is null;

    /// <summary>The audit's <c>for: alice</c>, or null.</summary>
    public string? AuditDetail => ActsFor is null ? null : "for: " + ActsFor;
}
