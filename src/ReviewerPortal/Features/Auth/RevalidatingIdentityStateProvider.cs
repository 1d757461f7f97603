using System.Security.Claims;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// An open portal page (a Blazor circuit) checks its account's security stamp as often as a cookie does
/// (<see cref="AuthOptions.SecurityStampValidationInterval"/>): once the account signed out, changed its password or
/// its roles, or is gone, the page signs out and goes to the sign-in page instead of living on with the old access.
/// </summary>
public sealed class RevalidatingIdentityStateProvider(
    ILoggerFactory loggerFactory,
    IServiceScopeFactory scopes,
    IOptions<AuthOptions> auth,
    IOptions<IdentityOptions> identity) : RevalidatingServerAuthenticationStateProvider(loggerFactory)
{
    protected override TimeSpan RevalidationInterval =>
        auth.Value.SecurityStampValidationInterval < TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : auth.Value.SecurityStampValidationInterval;

    protected override async Task<bool> ValidateAuthenticationStateAsync(AuthenticationState authenticationState, CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = await users.GetUserAsync(authenticationState.User);
        if (user is null)
        {
            return false;
        }
        var stamp = authenticationState.User.FindFirstValue(identity.Value.ClaimsIdentity.SecurityStampClaimType);
        return stamp == await users.GetSecurityStampAsync(user);
    }
}
