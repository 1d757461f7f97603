using System.Security.Claims;

namespace ReviewerPortal.Features.Auth;

public static class Roles
{
    /// <summary>Decides approvals of the tenants that list them as approvers.</summary>
    public const string Reviewer = "reviewer";

    /// <summary>Reads every tenant, decides nothing.</summary>
    public const string OnCall = "oncall";

    /// <summary>Configures tenants, policies, keys; reads every tenant.</summary>
    public const string Admin = "admin";

    public static readonly IReadOnlyList<string> All = [Reviewer, OnCall, Admin];
}

public static class ClaimNames
{
    public const string Kind = "rp:kind";
    public const string Tenant = "rp:tenant";

    /// <summary>The hash of the bearer key a principal signed in with (to end its live connections when it is revoked).</summary>
    public const string KeyHash = "rp:key";
    public const string KindAgent = "agent";
    public const string KindAccount = "account";
}

/// <summary>Who is calling: an agent of one tenant, or a person with roles.</summary>
public sealed record Caller(string Name, bool IsAgent, string? AgentTenant, IReadOnlySet<string> Roles, string? Email = null)
{
    public bool IsAdmin => Roles.Contains(Auth.Roles.Admin);
    public bool IsReviewer => Roles.Contains(Auth.Roles.Reviewer);
    public bool IsOnCall => Roles.Contains(Auth.Roles.OnCall);
    public bool ReadsEveryTenant => !IsAgent && (IsAdmin || IsOnCall);

    /// <summary>The audit's actor name: <c>agent:name</c> or <c>user:name</c>.</summary>
    public string Actor => IsAgent ? "agent:" + Name : "user:" + Name;

    /// <summary>
    /// Whether <paramref name="claimed"/> (a <c>requestedBy</c>, a submitter) names this person however it is spelled:
    /// trimmed and case-insensitive, as the account name, the account's e-mail, or an e-mail whose local part is the
    /// account name. Four-eyes checks use it, so a spelling never turns a requester into their own approver.
    /// </summary>
    public bool Is(string? claimed)
    {
        var text = claimed?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }
        if (string.Equals(text, Name, StringComparison.OrdinalIgnoreCase)
            || (Email is not null && string.Equals(text, Email, StringComparison.OrdinalIgnoreCase)))
        {
            return true;
        }
        var at = text.IndexOf('@');
        return at > 0 && string.Equals(text[..at].Trim(), Name, StringComparison.OrdinalIgnoreCase);
    }

    public static Caller From(ClaimsPrincipal user)
    {
        var name = user.Identity?.Name ?? "anonymous";
        var isAgent = user.FindFirstValue(ClaimNames.Kind) == ClaimNames.KindAgent;
        var roles = user.FindAll(ClaimTypes.Role).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        return new Caller(name, isAgent, isAgent ? user.FindFirstValue(ClaimNames.Tenant) : null, roles,
            isAgent ? null : user.FindFirstValue(ClaimTypes.Email));
    }
}
