using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;

namespace ReviewerPortal.Features.Auth;

public enum PasswordSignInOutcome
{
    SignedIn,

    /// <summary>Unknown name, wrong password, or an account that may not sign in: one answer for all.</summary>
    Failed,

    /// <summary>The source (address, name) is over a failure limit: refused whether the name exists or not.</summary>
    Throttled,

    /// <summary>Password accounts are switched off (<c>Authentication:LocalAccounts:Enabled=false</c>).</summary>
    Disabled,
}

/// <summary>
/// Password sign-in that tells nobody which accounts exist: an unknown name costs one password hash verification
/// (against a dummy hash), like a wrong password, and gets the same answer; failures slow down their source through
/// <see cref="SignInThrottle"/> instead of locking the account (Identity's lockout-on-failure is not used); every
/// outcome is audited in the accounts stream.
/// </summary>
public sealed class PasswordSignIn(
    SignInManager<IdentityUser> signIn,
    IPasswordHasher<IdentityUser> hasher,
    SignInThrottle throttle,
    AccountAudit audit,
    LocalAccounts localAccounts,
    ILogger<PasswordSignIn> logger)
{
    private static readonly IdentityUser DummyUser = new("dummy-user-for-timing") { Id = "dummy" };
    private static string? _dummyHash;

    private void VerifyDummy(string password)
    {
        _dummyHash ??= hasher.HashPassword(DummyUser, Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
        hasher.VerifyHashedPassword(DummyUser, _dummyHash, password);
    }

    public async Task<PasswordSignInOutcome> SignInAsync(string userName, string password, bool persistent, IPAddress? address,
        CancellationToken cancellationToken = default)
    {
        if (!localAccounts.Enabled)
        {
            return PasswordSignInOutcome.Disabled;
        }
        var source = SignInThrottle.Source(address);
        if (await throttle.IsThrottledAsync(address, userName))
        {
            logger.LogInformation("Sign-in for {User} from {Address} refused: too many failures", userName, source);
            return PasswordSignInOutcome.Throttled;
        }

        var user = await signIn.UserManager.FindByNameAsync(userName);
        var ok = false;
        if (user?.PasswordHash is null)
        {
            VerifyDummy(password); // no such account, or one without a password: the same work as a wrong password
        }
        else
        {
            // No lockout on failure: the throttle slows the source down instead.
            var result = await signIn.CheckPasswordSignInAsync(user, password, lockoutOnFailure: false);
            if (result.IsLockedOut || result.IsNotAllowed)
            {
                VerifyDummy(password); // refused before the password was checked: do the same work anyway
            }
            ok = result.Succeeded;
        }

        if (ok)
        {
            await signIn.SignInWithClaimsAsync(user!, persistent, [new System.Security.Claims.Claim("amr", "pwd")]);
            await throttle.SucceededAsync(address, userName);
            await audit.WriteAsync(AccountAudit.SignedIn, user!.UserName!, $"password from {source}", cancellationToken);
            return PasswordSignInOutcome.SignedIn;
        }

        var reached = await throttle.FailedAsync(address, userName);
        await audit.WriteAsync(AccountAudit.SignInFailed, userName, $"password from {source}", cancellationToken);
        if (reached.Count > 0)
        {
            logger.LogWarning("Sign-in for {User} from {Address} throttled after repeated failures ({Scopes})", userName, source, string.Join(", ", reached));
            await audit.WriteAsync(AccountAudit.SignInThrottled, userName, $"from {source}: limit per {string.Join(", ", reached)} reached", cancellationToken);
        }
        return PasswordSignInOutcome.Failed;
    }
}
