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

    public static async Task<RedirectHttpResult> Logout(SignInManager<IdentityUser> signIn, [Microsoft.AspNetCore.Mvc.FromForm] string? returnUrl = null)
    {
        await signIn.SignOutAsync();
        return TypedResults.LocalRedirect("/account/login");
    }
}
