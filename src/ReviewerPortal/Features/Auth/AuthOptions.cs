using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Auth;

/// <summary>Portal sessions and password sign-in (<c>Auth</c> in settings).</summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string Section = "Auth";

    /// <summary>A portal session ends after this long without a request (sliding: each request renews it). Default 8 h.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromHours(8);

    /// <summary>
    /// How often a session's cookie is checked against its account's security stamp: a sign-out, password change or
    /// role change ends every other session of the account within this time. Default 1 minute.
    /// </summary>
    public TimeSpan SecurityStampValidationInterval { get; set; } = TimeSpan.FromMinutes(1);

    public SignInThrottleOptions SignIn { get; set; } = new();

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (IdleTimeout < TimeSpan.FromMinutes(1) || IdleTimeout > TimeSpan.FromDays(30))
        {
            yield return new ValidationResult("Auth:IdleTimeout: from 1 minute to 30 days.", [nameof(IdleTimeout)]);
        }
        if (SecurityStampValidationInterval < TimeSpan.Zero || SecurityStampValidationInterval > TimeSpan.FromHours(1))
        {
            yield return new ValidationResult("Auth:SecurityStampValidationInterval: from 0 to 1 hour.", [nameof(SecurityStampValidationInterval)]);
        }
        if (SignIn.Window < TimeSpan.FromSeconds(1) || SignIn.Window > TimeSpan.FromDays(1))
        {
            yield return new ValidationResult("Auth:SignIn:Window: from 1 second to 1 day.", ["SignIn.Window"]);
        }
        if (SignIn.MaxFailuresPerWindow < 1)
        {
            yield return new ValidationResult("Auth:SignIn:MaxFailuresPerWindow: at least 1.", ["SignIn.MaxFailuresPerWindow"]);
        }
        if (SignIn.MaxFailuresPerAddress < 0 || SignIn.MaxFailuresPerAccount < 0)
        {
            yield return new ValidationResult("Auth:SignIn:MaxFailuresPerAddress and MaxFailuresPerAccount: 0 (off) or more.", ["SignIn"]);
        }
    }
}

/// <summary>
/// How failed password sign-ins slow down their source (<c>Auth:SignIn</c>). Counters live in Redis, so every instance
/// shares them; a source over a limit gets "too many attempts" until its window ends, whether the name exists or not.
/// The account itself is never locked: its owner signs in from another address as usual.
/// </summary>
public sealed class SignInThrottleOptions
{
    /// <summary>Failures allowed for one account name from one client address per window. Default 5.</summary>
    public int MaxFailuresPerWindow { get; set; } = 5;

    /// <summary>Failures allowed from one client address over all names per window (password spraying); 0: no limit. Default 20.</summary>
    public int MaxFailuresPerAddress { get; set; } = 20;

    /// <summary>
    /// Failures allowed for one account name from all addresses per window (a distributed guess); 0: no limit. Default 100.
    /// Reaching it slows that name down for everyone, so keep it well above what one person mistypes.
    /// </summary>
    public int MaxFailuresPerAccount { get; set; } = 100;

    /// <summary>How long failures count, from the first one. Default 15 minutes.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(15);
}
