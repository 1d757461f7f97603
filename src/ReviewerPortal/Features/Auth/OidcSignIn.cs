using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// The end of an OpenID Connect sign-in: the provider's identity (validated by the handler: signature, issuer, audience,
/// nonce, PKCE) becomes a local account, linked by the provider's subject (created on first sign-in, or linked to the
/// account of the same name), so approver lists and the audit keep naming accounts. Its roles become exactly the mapped
/// ones (a change is audited and renews the security stamp), and <see cref="OidcRoleMapping.ApproverOf"/> adds it to
/// that tenant's approvers.
/// </summary>
public sealed class OidcSignIn(
    SignInManager<IdentityUser> signIn,
    IOptions<OidcOptions> options,
    AccountAudit audit,
    TenantStore tenants,
    TenantSettingsService settings,
    ILogger<OidcSignIn> logger)
{
    public const string LoginProvider = OidcOptions.Scheme;
    private static readonly Caller Sync = new("system:oidc", false, null, new HashSet<string>());

    /// <summary>Signs the external identity in as its local account; null when refused (the reason is audited and logged).</summary>
    public async Task<IdentityUser?> CompleteAsync(HttpContext context, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var external = await context.AuthenticateAsync(IdentityConstants.ExternalScheme);
        await context.SignOutAsync(IdentityConstants.ExternalScheme);
        var principal = external.Principal;
        var subject = principal?.FindFirstValue("sub");
        var source = SignInThrottle.Source(context.Connection.RemoteIpAddress);
        if (!external.Succeeded || principal is null || string.IsNullOrEmpty(subject))
        {
            await audit.WriteAsync(AccountAudit.SignInFailed, "unknown", $"{o.DisplayName} from {source}: no external sign-in", cancellationToken);
            return null;
        }
        var name = (principal.FindFirstValue(o.UserNameClaim) ?? principal.FindFirstValue("email") ?? subject).Trim();
        var users = signIn.UserManager;

        var user = await users.FindByLoginAsync(LoginProvider, subject);
        if (user is null)
        {
            user = await users.FindByNameAsync(name);
            if (user is not null && (await users.GetLoginsAsync(user)).Any(l => l.LoginProvider == LoginProvider))
            {
                // The name belongs to another subject of the provider: never hand one person's account to another.
                await audit.WriteAsync(AccountAudit.SignInFailed, name, $"{o.DisplayName} from {source}: the account is linked to another identity", cancellationToken);
                return null;
            }
            if (user is null)
            {
                user = new IdentityUser(name) { Email = principal.FindFirstValue("email"), EmailConfirmed = principal.FindFirstValue("email") is not null };
                var created = await users.CreateAsync(user);
                if (!created.Succeeded)
                {
                    var why = string.Join("; ", created.Errors.Select(e => e.Description));
                    logger.LogWarning("OpenID Connect sign-in of {User}: no account could be created: {Errors}", name, why);
                    await audit.WriteAsync(AccountAudit.SignInFailed, name, $"{o.DisplayName} from {source}: {why}", cancellationToken);
                    return null;
                }
                await audit.WriteAsync(AccountAudit.AccountCreated, name, $"by sign-in with {o.DisplayName}", cancellationToken);
            }
            var linked = await users.AddLoginAsync(user, new UserLoginInfo(LoginProvider, subject, o.DisplayName));
            if (!linked.Succeeded)
            {
                await audit.WriteAsync(AccountAudit.SignInFailed, name, $"{o.DisplayName} from {source}: could not link the account", cancellationToken);
                return null;
            }
        }

        await SyncRolesAsync(user, principal, o, cancellationToken);
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, [new Claim("amr", "external"), new Claim(ClaimTypes.AuthenticationMethod, LoginProvider)]);
        await audit.WriteAsync(AccountAudit.SignedIn, user.UserName!, $"{o.DisplayName} from {source}", cancellationToken);
        return user;
    }

    private async Task SyncRolesAsync(IdentityUser user, ClaimsPrincipal principal, OidcOptions o, CancellationToken cancellationToken)
    {
        var matched = o.RoleMappings.Where(m => principal.Claims.Any(c => c.Type == m.ClaimType && c.Value == m.ClaimValue)).ToList();
        var wanted = matched.Select(m => m.Role).Concat(matched.Where(m => m.ApproverOf is not null).Select(_ => Roles.Reviewer))
            .OfType<string>().ToHashSet(StringComparer.Ordinal);
        var users = signIn.UserManager;
        var current = (await users.GetRolesAsync(user)).ToHashSet(StringComparer.Ordinal);
        if (!current.SetEquals(wanted))
        {
            // Each change renews the security stamp (AccountUserManager): the account's other sessions end.
            var removed = current.Except(wanted).ToList();
            var added = wanted.Except(current).ToList();
            if (removed.Count > 0)
            {
                await users.RemoveFromRolesAsync(user, removed);
            }
            if (added.Count > 0)
            {
                await users.AddToRolesAsync(user, added);
            }
            await audit.WriteAsync(AccountAudit.RolesChanged, user.UserName!,
                $"[{string.Join(',', current.Order())}] → [{string.Join(',', wanted.Order())}] from the claims of {o.DisplayName}", cancellationToken);
        }
        foreach (var tenant in matched.Select(m => m.ApproverOf).OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var tenantSettings = await tenants.GetSettingsAsync(tenant);
            if (tenantSettings is null)
            {
                logger.LogWarning("OpenID Connect role mapping names tenant {Tenant}, which does not exist", tenant);
                continue;
            }
            if (tenantSettings.Approvers.Contains(user.UserName!, StringComparer.Ordinal))
            {
                continue;
            }
            var update = await settings.UpdateAsync(tenantSettings, new TenantSettingsRequest { Approvers = [.. tenantSettings.Approvers, user.UserName!] }, Sync, cancellationToken);
            if (update.Errors.Count > 0)
            {
                logger.LogWarning("{User} could not join the approvers of {Tenant}: {Errors}", user.UserName, tenant,
                    string.Join("; ", update.Errors.SelectMany(e => e.Value)));
            }
        }
    }

    /// <summary>The provider answered with an error, or its answer failed validation (signature, issuer, nonce...): audited, back to the sign-in page.</summary>
    public static async Task RemoteFailureAsync(RemoteFailureContext context)
    {
        var services = context.HttpContext.RequestServices;
        var o = services.GetRequiredService<IOptions<OidcOptions>>().Value;
        var reason = context.Failure?.Message ?? "unknown failure";
        services.GetRequiredService<ILogger<OidcSignIn>>().LogWarning(context.Failure, "OpenID Connect sign-in refused");
        await services.GetRequiredService<AccountAudit>().WriteAsync(AccountAudit.SignInFailed, "unknown",
            $"{o.DisplayName} from {SignInThrottle.Source(context.HttpContext.Connection.RemoteIpAddress)}: {reason}", context.HttpContext.RequestAborted);
        context.Response.Redirect("/account/login?error=oidc");
        context.HandleResponse();
    }

    /// <summary>The handler's options from <see cref="OidcOptions"/>.</summary>
    public static void Configure(OpenIdConnectOptions options, OidcOptions o)
    {
        options.Authority = o.Authority;
        options.ClientId = o.ClientId;
        options.ClientSecret = string.IsNullOrEmpty(o.ClientSecret) ? null : o.ClientSecret;
        options.RequireHttpsMetadata = o.RequireHttpsMetadata;
        options.CallbackPath = o.CallbackPath;
        options.ResponseType = "code";
        options.UsePkce = true;
        // The answer comes back as a top-level GET, so the correlation and nonce cookies can be SameSite=Lax.
        options.ResponseMode = "query";
        options.SignInScheme = IdentityConstants.ExternalScheme;
        options.MapInboundClaims = false;
        options.SaveTokens = false;
        options.Scope.Clear();
        foreach (var scope in o.EffectiveScopes())
        {
            options.Scope.Add(scope);
        }
        foreach (var cookie in new[] { options.CorrelationCookie, options.NonceCookie })
        {
            cookie.HttpOnly = true;
            cookie.SameSite = SameSiteMode.Lax;
            cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        }
        options.Events.OnRemoteFailure = RemoteFailureAsync;
    }
}
