using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// Two ways in: API calls carry <c>Authorization: Bearer</c> (agent keys, people's API tokens) and are authorised
/// only by that scheme, so a browser cookie can never drive the API (no CSRF surface); the portal uses ASP.NET Core
/// Identity's cookie (HttpOnly, SameSite=Lax, Secure over HTTPS, an idle timeout, checked against the account's
/// security stamp every minute so a sign-out, password or role change ends every session), with anti-forgery on every
/// form; failed password sign-ins slow down their source (<see cref="SignInThrottle"/>) instead of locking the account.
/// </summary>
public static class AuthSetup
{
    public const string ApiPolicy = "api";
    public const string AgentPolicy = "agent";
    public const string AccountPolicy = "account";
    public const string AdminPolicy = "admin";

    public static IHostApplicationBuilder AddAuth(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddMemoryCache();
        services.AddSingleton<ApiKeyService>();
        services.AddSingleton<AccountDirectory>();
        services.AddSingleton<ApiKeyPrincipals>();
        services.AddSingleton<AgentKeys>();
        services.AddSingleton<Approvals.HubConnections>();
        services.AddSingleton<Approvals.WaitSlots>();
        services.AddHostedService<KeyRevocationListener>();
        services.AddSingleton<AccountChanges>();
        services.AddHostedService(sp => sp.GetRequiredService<AccountChanges>());
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LocalAccountsOptions>().BindConfiguration(LocalAccountsOptions.Section);
        services.AddSingleton<LocalAccounts>();
        services.AddSingleton<SignInThrottle>();
        services.AddSingleton<AccountAudit>();
        services.AddScoped<PasswordSignIn>();
        services.AddOptions<OidcOptions>().BindConfiguration(OidcOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddScoped<OidcSignIn>();
        services.AddCascadingAuthenticationState();
        services.AddScoped<Microsoft.AspNetCore.Components.Authorization.AuthenticationStateProvider, RevalidatingIdentityStateProvider>();
        services.AddAuthentication(o =>
            {
                o.DefaultScheme = IdentityConstants.ApplicationScheme;
                o.DefaultSignInScheme = IdentityConstants.ExternalScheme;
            })
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddIdentityCookies();
        // The OpenID Connect scheme exists only when configured (its handler refuses to start without a client id).
        if (builder.Configuration.GetSection(OidcOptions.Section).Get<OidcOptions>() is { Enabled: true } oidc)
        {
            services.AddAuthentication().AddOpenIdConnect(OidcOptions.Scheme, oidc.DisplayName, _ => { });
            services.AddOptions<Microsoft.AspNetCore.Authentication.OpenIdConnect.OpenIdConnectOptions>(OidcOptions.Scheme)
                .Configure<IOptions<OidcOptions>>((o, settings) => OidcSignIn.Configure(o, settings.Value));
        }
        services.ConfigureApplicationCookie(o =>
        {
            o.LoginPath = "/account/login";
            o.LogoutPath = "/account/logout";
            o.AccessDeniedPath = "/account/denied";
            o.Cookie.Name = "rp.auth";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.SlidingExpiration = true;
        });
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ApplicationScheme)
            .Configure<IOptions<AuthOptions>>((o, auth) => o.ExpireTimeSpan = auth.Value.IdleTimeout)
            .Configure(o => o.Events.OnValidatePrincipal = AccountChanges.ValidateCookieAsync);
        services.AddOptions<CookieAuthenticationOptions>(IdentityConstants.ExternalScheme).Configure(o =>
        {
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        services.AddOptions<SecurityStampValidatorOptions>()
            .Configure<IOptions<AuthOptions>>((o, auth) => o.ValidationInterval = auth.Value.SecurityStampValidationInterval);
        services.AddAntiforgery(o =>
        {
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiPolicy, p => Api(p))
            .AddPolicy(AgentPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAgent))
            .AddPolicy(AccountPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount))
            .AddPolicy(AdminPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount).RequireRole(Roles.Admin));
        services.AddIdentityCore<IdentityUser>(o =>
            {
                // Failed sign-ins never lock an account (anyone could lock an approver out): the throttle slows the
                // source down. An account an admin locks (LockoutEnd) stays locked.
                o.Lockout.AllowedForNewUsers = true;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireDigit = false;
                o.Password.RequiredLength = 8;
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<AppDbContext>()
            .AddUserManager<AccountUserManager>()
            .AddSignInManager()
            .AddClaimsPrincipalFactory<AccountClaimsFactory>()
            .AddDefaultTokenProviders();
        return builder;
    }

    private static Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder Api(Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder policy) =>
        policy.AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName).RequireAuthenticatedUser();
}

/// <summary>Marks cookie principals as accounts, like their API tokens, so one <see cref="Caller"/> serves both.</summary>
public sealed class AccountClaimsFactory(
    UserManager<IdentityUser> users,
    RoleManager<IdentityRole> roles,
    IOptions<IdentityOptions> options) : UserClaimsPrincipalFactory<IdentityUser, IdentityRole>(users, roles, options)
{
    protected override async Task<ClaimsIdentity> GenerateClaimsAsync(IdentityUser user)
    {
        var identity = await base.GenerateClaimsAsync(user);
        identity.AddClaim(new Claim(ClaimNames.Kind, ClaimNames.KindAccount));
        return identity;
    }
}

/// <summary>
/// Identity's user manager, with one rule added: a change of an account's roles renews its security stamp, so the
/// account's open sessions end at their next stamp check (within <see cref="AuthOptions.SecurityStampValidationInterval"/>)
/// and sign in again with the new roles. (A password change renews the stamp already.)
/// </summary>
public sealed class AccountUserManager(
    IUserStore<IdentityUser> store,
    IOptions<IdentityOptions> optionsAccessor,
    IPasswordHasher<IdentityUser> passwordHasher,
    IEnumerable<IUserValidator<IdentityUser>> userValidators,
    IEnumerable<IPasswordValidator<IdentityUser>> passwordValidators,
    ILookupNormalizer keyNormalizer,
    IdentityErrorDescriber errors,
    IServiceProvider services,
    ILogger<UserManager<IdentityUser>> logger,
    AccountChanges changes)
    : UserManager<IdentityUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    public override Task<IdentityResult> AddToRoleAsync(IdentityUser user, string role) => AddToRolesAsync(user, [role]);

    public override async Task<IdentityResult> AddToRolesAsync(IdentityUser user, IEnumerable<string> roles) =>
        await RenewStampAsync(user, await base.AddToRolesAsync(user, roles));

    public override Task<IdentityResult> RemoveFromRoleAsync(IdentityUser user, string role) => RemoveFromRolesAsync(user, [role]);

    public override async Task<IdentityResult> RemoveFromRolesAsync(IdentityUser user, IEnumerable<string> roles) =>
        await RenewStampAsync(user, await base.RemoveFromRolesAsync(user, roles));

    private async Task<IdentityResult> RenewStampAsync(IdentityUser user, IdentityResult result) =>
        result.Succeeded ? await UpdateSecurityStampAsync(user) : result;

    /// <summary>A renewed stamp (sign-out, role change) is announced, so open sessions end within seconds everywhere.</summary>
    public override async Task<IdentityResult> UpdateSecurityStampAsync(IdentityUser user) =>
        await AnnounceAsync(user, await base.UpdateSecurityStampAsync(user));

    public override async Task<IdentityResult> ChangePasswordAsync(IdentityUser user, string currentPassword, string newPassword) =>
        await AnnounceAsync(user, await base.ChangePasswordAsync(user, currentPassword, newPassword));

    public override async Task<IdentityResult> ResetPasswordAsync(IdentityUser user, string token, string newPassword) =>
        await AnnounceAsync(user, await base.ResetPasswordAsync(user, token, newPassword));

    public override async Task<IdentityResult> DeleteAsync(IdentityUser user) =>
        await AnnounceAsync(user, await base.DeleteAsync(user));

    private async Task<IdentityResult> AnnounceAsync(IdentityUser user, IdentityResult result)
    {
        if (result.Succeeded && user.UserName is { } name)
        {
            await changes.AnnounceAsync(name);
        }
        return result;
    }
}
