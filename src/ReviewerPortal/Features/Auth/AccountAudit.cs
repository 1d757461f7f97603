using ReviewerPortal.Features.Audit;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// Sign-ins, throttling and role changes belong to no tenant: they go to the audit stream <see cref="Stream"/> (a
/// name no tenant can have: tenant ids start with a letter or digit), through the same audit writer and hash chain.
/// </summary>
public sealed class AccountAudit(AuditLog audit)
{
    public const string Stream = "_accounts";

    public const string SignedIn = "signed_in";
    public const string SignInFailed = "sign_in_failed";
    public const string SignInThrottled = "sign_in_throttled";
    public const string SignedOut = "signed_out";
    public const string RolesChanged = "roles_changed";
    public const string AccountCreated = "account_created";

    /// <summary>Appends one entry; <paramref name="userName"/> is the name as typed or asserted (cut to 100 characters).</summary>
    public async Task WriteAsync(string action, string userName, string details, CancellationToken cancellationToken = default)
    {
        var name = userName.Trim();
        if (name.Length > 100)
        {
            name = name[..100] + "…";
        }
        var entry = audit.NewEntry(Stream, "user:" + name, action);
        entry.Details = details.Length > 500 ? details[..500] : details;
        await audit.AppendAsync(entry, cancellationToken);
    }
}
