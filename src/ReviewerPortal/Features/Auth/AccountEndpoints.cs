using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Features.Auth;

/// <summary>Sign-out for the portal (a form POST with an anti-forgery token), and the two ends of an OpenID Connect sign-in.</summary>
public static class AccountEndpoints
{
    public static IEndpointRouteBuilder MapAccountEndpoints(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/account/logout", Logout).WithName("Logout").ExcludeFromDescription();
        routes.MapGet("/account/oidc", StartOidc).WithName("StartOidcSignIn").ExcludeFromDescription().AllowAnonymous();
        routes.MapGet("/account/oidc/done", CompleteOidc).WithName("CompleteOidcSignIn").ExcludeFromDescription().AllowAnonymous();
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

    /// <summary>Sends the browser to the OpenID provider (code flow with PKCE); 404 when OpenID Connect is off.</summary>
    public static Results<ChallengeHttpResult, NotFound> StartOidc(IOptions<OidcOptions> options, string? returnUrl = null)
    {
        if (!options.Value.Enabled)
        {
            return TypedResults.NotFound();
        }
        var properties = new AuthenticationProperties
        {
            RedirectUri = "/account/oidc/done?returnUrl=" + Uri.EscapeDataString(ReturnUrls.LocalOrRoot(returnUrl)),
        };
        return TypedResults.Challenge(properties, [OidcOptions.Scheme]);
    }

    /// <summary>Back from the provider (already validated by the handler): sign in the linked local account.</summary>
    public static async Task<Results<RedirectHttpResult, NotFound>> CompleteOidc(HttpContext context, IOptions<OidcOptions> options,
        OidcSignIn oidc, CancellationToken cancellationToken, string? returnUrl = null)
    {
        if (!options.Value.Enabled)
        {
            return TypedResults.NotFound();
        }
        var user = await oidc.CompleteAsync(context, cancellationToken);
        return TypedResults.LocalRedirect(user is null ? "/account/login?error=oidc" : ReturnUrls.LocalOrRoot(returnUrl));
    }
}
