using Microsoft.Extensions.Options;

namespace ReviewerPortal.Features.Auth;

/// <summary>Password accounts in the portal (<c>Authentication:LocalAccounts</c>).</summary>
public sealed class LocalAccountsOptions
{
    public const string Section = "Authentication:LocalAccounts";

    /// <summary>
    /// False: the sign-in page shows no password form and a posted one is refused; people sign in through OpenID Connect
    /// only (API tokens keep working). Default true.
    /// </summary>
    public bool Enabled { get; set; } = true;
}

public sealed class LocalAccounts(IOptionsMonitor<LocalAccountsOptions> options)
{
    public bool Enabled => options.CurrentValue.Enabled;
}
