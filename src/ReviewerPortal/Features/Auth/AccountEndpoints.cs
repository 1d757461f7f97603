using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;

namespace ReviewerPortal.Features.Auth;

/// <summary>Sign-out for the portal (a form POST with an anti-forgery token).</summary>
public static class AccountEndpoints
{
    public static IEndpointRouteBuilder MapAccountEndpoints(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/account/logout", Logout).WithName("Logout").ExcludeFromDescription();
        return routes;
    }

    /// <summary>
    /// Signs out here and ends every other session of the account too: the renewed security stamp refuses their cookies
    /// at their next check (<see cref="AuthOptions.SecurityStampValidationInterval"/>).
    /// </summary>
    public static async Task<RedirectHttpResult> Logout(ClaimsPrincipal principal, SignInManager<IdentityUser> signIn, AccountAudit audit,
        CancellationToken cancellationToken)
    {
        var user = principal.Identity?.IsAuthenticated == true ? await signIn.UserManager.GetUserAsync(principal) : null;
        if (user is not null)
        {
            await signIn.UserManager.UpdateSecurityStampAsync(user);
        }
        await signIn.SignOutAsync();
        if (user is not null)
        {
            await audit.WriteAsync(AccountAudit.SignedOut, user.UserName!, "every session of the account ended", cancellationToken);
        }
        return TypedResults.LocalRedirect("/account/login");
    }
}
