using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using ReviewerPortal.Data;

namespace ReviewerPortal.Features.Auth;

public static class AuthSetup
{
    public const string AgentPolicy = "agent";
    public const string AccountPolicy = "account";
    public const string AdminPolicy = "admin";

    public static IHostApplicationBuilder AddAuth(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddMemoryCache();
        services.AddSingleton<ApiKeyService>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(AgentPolicy, p => p.RequireAuthenticatedUser().RequireClaim(ClaimNames.Kind, ClaimNames.KindAgent))
            .AddPolicy(AccountPolicy, p => p.RequireAuthenticatedUser().RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount))
            .AddPolicy(AdminPolicy, p => p.RequireAuthenticatedUser().RequireClaim(ClaimNames.Kind, ClaimNames.KindAccount).RequireRole(Roles.Admin));
        services.AddIdentityCore<IdentityUser>(o =>
            {
                o.Lockout.MaxFailedAccessAttempts = 5;
                o.Lockout.DefaultLockoutTimeSpan = TimeSpan.FromMinutes(5);
                o.Password.RequireNonAlphanumeric = false;
                o.Password.RequireUppercase = false;
                o.Password.RequireDigit = false;
                o.Password.RequiredLength = 8;
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<AppDbContext>();
        return builder;
    }
}
