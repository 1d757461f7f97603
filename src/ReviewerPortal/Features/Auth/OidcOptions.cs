using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// OpenID Connect sign-in for the portal (<c>Authentication:Oidc</c>): authorization code flow with PKCE, on when
/// <see cref="Authority"/> is set. People who sign in this way get a local account (linked by the provider's subject),
/// whose roles follow <see cref="RoleMappings"/> at every sign-in.
/// </summary>
public sealed class OidcOptions : IValidatableObject
{
    public const string Section = "Authentication:Oidc";
    public const string Scheme = "oidc";

    /// <summary>The issuer (its <c>/.well-known/openid-configuration</c> is read); empty: OpenID Connect is off.</summary>
    public string? Authority { get; set; }

    public string? ClientId { get; set; }

    public string? ClientSecret { get; set; }

    /// <summary>Scopes asked for; <c>openid</c> is always added. Empty: <c>openid profile email</c>.</summary>
    public List<string> Scopes { get; set; } = [];

    /// <summary>Shown on the sign-in page: "Sign in with &lt;DisplayName&gt;".</summary>
    public string DisplayName { get; set; } = "your company account";

    /// <summary>The claim that names the local account; falls back to <c>email</c>, then <c>sub</c>.</summary>
    public string UserNameClaim { get; set; } = "preferred_username";

    /// <summary>Only for a provider on loopback in tests: allow http metadata.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    public string CallbackPath { get; set; } = "/signin-oidc";

    public List<OidcRoleMapping> RoleMappings { get; set; } = [];

    public bool Enabled => !string.IsNullOrWhiteSpace(Authority);

    public IEnumerable<string> EffectiveScopes() =>
        (Scopes.Count == 0 ? ["openid", "profile", "email"] : Scopes).Prepend("openid").Where(s => !string.IsNullOrWhiteSpace(s)).Distinct(StringComparer.Ordinal);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!Enabled)
        {
            yield break;
        }
        if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || authority.Scheme is not ("https" or "http"))
        {
            yield return new ValidationResult($"{Section}:Authority: an absolute https address.", [nameof(Authority)]);
        }
        else if (authority.Scheme == "http" && RequireHttpsMetadata)
        {
            yield return new ValidationResult($"{Section}:Authority: https (http only with RequireHttpsMetadata=false, for a test provider).", [nameof(Authority)]);
        }
        if (string.IsNullOrWhiteSpace(ClientId))
        {
            yield return new ValidationResult($"{Section}:ClientId: required when Authority is set.", [nameof(ClientId)]);
        }
        if (!CallbackPath.StartsWith('/'))
        {
            yield return new ValidationResult($"{Section}:CallbackPath: a path starting with '/'.", [nameof(CallbackPath)]);
        }
        if (string.IsNullOrWhiteSpace(UserNameClaim))
        {
            yield return new ValidationResult($"{Section}:UserNameClaim: required.", [nameof(UserNameClaim)]);
        }
        for (var i = 0; i < RoleMappings.Count; i++)
        {
            var m = RoleMappings[i];
            var key = $"{Section}:RoleMappings:{i}";
            if (string.IsNullOrWhiteSpace(m.ClaimType) || string.IsNullOrWhiteSpace(m.ClaimValue))
            {
                yield return new ValidationResult($"{key}: ClaimType and ClaimValue are required.", ["RoleMappings"]);
            }
            if (m.Role is null && m.ApproverOf is null)
            {
                yield return new ValidationResult($"{key}: set Role (reviewer, oncall, admin) or ApproverOf (a tenant id).", ["RoleMappings"]);
            }
            if (m.Role is not null && !Roles.All.Contains(m.Role))
            {
                yield return new ValidationResult($"{key}:Role: one of {string.Join(", ", Roles.All)}.", ["RoleMappings"]);
            }
            if (m.ApproverOf is not null && !Tenants.TenantIds.IsValid(m.ApproverOf))
            {
                yield return new ValidationResult($"{key}:ApproverOf: a tenant id.", ["RoleMappings"]);
            }
        }
    }
}

/// <summary>A claim (type and value, e.g. <c>groups</c> = <c>portal-admins</c>) that gives a role, or makes an approver of a tenant.</summary>
public sealed class OidcRoleMapping
{
    public string ClaimType { get; set; } = "groups";
    public string ClaimValue { get; set; } = "";

    /// <summary><c>reviewer</c>, <c>oncall</c> or <c>admin</c>.</summary>
    public string? Role { get; set; }

    /// <summary>A tenant whose approvers the account joins (implies the reviewer role).</summary>
    public string? ApproverOf { get; set; }
}
