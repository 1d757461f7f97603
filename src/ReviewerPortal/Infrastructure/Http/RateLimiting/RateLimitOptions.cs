using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Infrastructure.Http.RateLimiting;

/// <summary>One token bucket: a steady rate and how many requests may come at once after a quiet spell.</summary>
public sealed class RateLimit
{
    /// <summary>Requests per second, refilled continuously (0.01 .. 1,000,000; 0.2 is one every 5 s).</summary>
    [Range(0.01, 1_000_000)]
    public double PermitsPerSecond { get; set; }

    /// <summary>The bucket's size: requests that may arrive at once (1 .. 10,000,000).</summary>
    [Range(1, 10_000_000)]
    public int Burst { get; set; }

    public override string ToString() =>
        $"{PermitsPerSecond.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture)} requests per second, bursts of {Burst}";
}

/// <summary>
/// Request rate limits of an instance, one bucket per caller: an agent key (by its hash), an account (by name, portal
/// and API tokens together), or a client address for anonymous requests and, separately, sign-in posts.
/// </summary>
public sealed class RateLimitOptions : IValidatableObject
{
    public const string Section = "RateLimits";

    /// <summary>Off: no request rate limit (policy throttle rules and the per-caller wait limits still apply).</summary>
    public bool Enabled { get; set; } = true;

    public RateLimit PerKey { get; set; } = new() { PermitsPerSecond = 200, Burst = 400 };

    public RateLimit PerAccount { get; set; } = new() { PermitsPerSecond = 100, Burst = 300 };

    public RateLimit PerAddress { get; set; } = new() { PermitsPerSecond = 20, Burst = 200 };

    /// <summary>
    /// Sign-in posts per address: a team behind one office address signs in at once (30), then one a second. It only
    /// guards against a flood; wrong passwords are slowed per address and name by <c>Auth:SignIn</c>'s failure counts.
    /// </summary>
    public RateLimit SignIn { get; set; } = new() { PermitsPerSecond = 1, Burst = 30 };

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        foreach (var (name, limit) in new[] { (nameof(PerKey), PerKey), (nameof(PerAccount), PerAccount), (nameof(PerAddress), PerAddress), (nameof(SignIn), SignIn) })
        {
            var results = new List<ValidationResult>();
            if (!Validator.TryValidateObject(limit, new ValidationContext(limit), results, validateAllProperties: true))
            {
                foreach (var result in results)
                {
                    yield return new ValidationResult($"{Section}:{name}: {result.ErrorMessage}",
                        result.MemberNames.Select(m => $"{name}.{m}").ToArray());
                }
            }
        }
    }
}
