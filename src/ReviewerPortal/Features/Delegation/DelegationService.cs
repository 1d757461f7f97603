using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Delegation;

public sealed class DelegationOptions
{
    public const string Section = "Delegation";

    /// <summary>How far ahead a delegation may end (its <c>until</c> at most this long after now).</summary>
    [Range(typeof(TimeSpan), "01:00:00", "366.00:00:00")]
    public TimeSpan MaxDuration { get; set; } = TimeSpan.FromDays(90);
}

/// <summary>What an approver asks for: away from <c>from</c> (default now) until <c>until</c>, <c>delegateTo</c> deciding meanwhile.</summary>
public sealed record DelegationRequest(string? DelegateTo, DateTimeOffset? From, DateTimeOffset? Until);

/// <summary>
/// Sets and ends out-of-office delegations. Only reviewers delegate, and only to another reviewer account (any reviewer:
/// who may decide what is checked per approval, see <c>TenantAccess.DecisionRightAsync</c>). Every change is audited on
/// the accounts' stream.
/// </summary>
public sealed class DelegationService(DelegationStore store, AccountDirectory accounts, AccountAudit audit, TimeProvider time,
    IOptions<DelegationOptions> options, Tenants.TenantStore tenants, Approvals.AccessChanges accessChanges)
{
    public const string Set = "delegation_set";
    public const string Ended = "delegation_ended";

    /// <summary>Stores the caller's delegation, replacing any other; the errors by field when the request is wrong.</summary>
    public async Task<(Delegation? Value, Dictionary<string, string[]>? Errors)> SetAsync(Caller caller, DelegationRequest request,
        CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var now = time.GetUtcNow();
        var to = request.DelegateTo?.Trim() ?? "";
        if (to.Length == 0)
        {
            errors["delegateTo"] = ["Required: the account that decides for you while you are away."];
        }
        else if (string.Equals(to, caller.Name, StringComparison.OrdinalIgnoreCase))
        {
            errors["delegateTo"] = ["You cannot delegate to yourself."];
        }
        else if (await accounts.FindAsync(to, cancellationToken) is not { } person)
        {
            errors["delegateTo"] = [$"'{to}' is no account."];
        }
        else if (!person.IsReviewer)
        {
            errors["delegateTo"] = [$"'{to}' is not a reviewer: only reviewers decide."];
        }
        var from = request.From ?? now;
        if (request.Until is not { } until)
        {
            errors["until"] = ["Required: when you are back (ISO 8601, e.g. 2026-12-24T09:00:00Z)."];
        }
        else if (until <= now)
        {
            errors["until"] = ["Must be in the future."];
        }
        else if (until <= from)
        {
            errors["until"] = ["Must be after 'from'."];
        }
        else if (until > now + options.Value.MaxDuration)
        {
            errors["until"] = [$"At most {options.Value.MaxDuration.TotalDays:0.#} days ahead (Delegation:MaxDuration)."];
        }
        if (errors.Count > 0)
        {
            return (null, errors);
        }
        var delegation = new Delegation(caller.Name, to, from.ToUniversalTime(), request.Until!.Value.ToUniversalTime(), now, caller.Name);
        await store.SetAsync(delegation);
        await audit.WriteAsync(Set, caller.Name, $"away from {delegation.From:O} until {delegation.Until:O}; delegate: {to}", cancellationToken);
        await AnnounceAsync(caller.Name);
        return (delegation, null);
    }

    /// <summary>Ends <paramref name="user"/>'s delegation (themselves, or an admin); null when there was none.</summary>
    public async Task<Delegation?> EndAsync(string user, Caller by, CancellationToken cancellationToken)
    {
        var ended = await store.RemoveAsync(user);
        if (ended is not null)
        {
            await audit.WriteAsync(Ended, user, by.Name == user
                ? $"back; delegate was {ended.DelegateTo}"
                : $"ended by {by.Name}; delegate was {ended.DelegateTo}", cancellationToken);
            await AnnounceAsync(user);
        }
        return ended;
    }

    /// <summary>
    /// The delegate's live connections follow at once (they join or leave the tenants of the person away); a delegation
    /// that starts or lapses later is picked up by the hub's periodic sweep.
    /// </summary>
    private async Task AnnounceAsync(string user)
    {
        foreach (var tenant in await tenants.ListAsync())
        {
            if (await tenants.GetSettingsAsync(tenant) is { } settings && settings.Involves(user))
            {
                await accessChanges.AnnounceAsync(tenant);
            }
        }
    }
}
