using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// Two ways in: API calls carry <c>Authorization: Bearer</c> (agent keys, people's API tokens) and are authorised
/// only by that scheme, so a browser cookie can never drive the API (no CSRF surface); the portal uses ASP.NET Core
/// Identity's cookie, with anti-forgery on every form and lockout after repeated failures.
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
        services.AddSingleton<ApiKeyPrincipals>();
        services.AddSingleton<AgentKeys>();
        services.AddSingleton<Approvals.HubConnections>();
        services.AddSingleton<Approvals.WaitSlots>();
        services.AddHostedService<KeyRevocationListener>();
        services.AddCascadingAuthenticationState();
        services.AddAuthentication(o =>
            {
                o.DefaultScheme = IdentityConstants.ApplicationScheme;
                o.DefaultSignInScheme = IdentityConstants.ExternalScheme;
            })
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddIdentityCookies();
        services.ConfigureApplicationCookie(o =>
        {
            o.LoginPath = "/account/login";
            o.LogoutPath = "/account/logout";
            o.AccessDeniedPath = "/account/denied";
            o.Cookie.Name = "rp.auth";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.SlidingExpiration = true;
            o.ExpireTimeSpan = TimeSpan.FromHours(12);
        });
        services.AddAuthorizationBuilder()
            .AddPolicy(ApiPolicy, p => Api(p))
            .AddPolicy(AgentPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAgent))
            .AddPolicy(AccountPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount))
            .AddPolicy(AdminPolicy, p => Api(p).RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount).RequireRole(Roles.Admin));
        services.AddIdentityCore<IdentityUser>(o =>
            {
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(5);
                o.Lockout.AllowedForNewUsers = true;
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireDigit = false;
                o.Password.RequiredLength = 8;
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<AppDbContext>()
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
