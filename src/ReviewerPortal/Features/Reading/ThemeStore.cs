using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Reading;

/// <summary>
/// The theme an account chose, kept as a claim on its Identity user (no schema change), so it follows the account to
/// every browser and tab. Agents and anonymous visitors have none (their browser's cookie decides).
/// </summary>
public sealed class ThemeStore(IServiceScopeFactory scopes)
{
    public const string ClaimType = "reviewerportal:theme";

    public async Task<ThemeChoice?> ReadAsync(ClaimsPrincipal principal)
    {
        if (!IsAccount(principal))
        {
            return null;
        }
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = await users.GetUserAsync(principal);
        if (user is null)
        {
            return null;
        }
        var claim = (await users.GetClaimsAsync(user)).FirstOrDefault(c => c.Type == ClaimType);
        return ReaderPreferences.ParseTheme(claim?.Value);
    }

    /// <summary>Saves the choice on the account; false when the principal is not a (still existing) account.</summary>
    public async Task<bool> SaveAsync(ClaimsPrincipal principal, ThemeChoice theme)
    {
        if (!IsAccount(principal))
        {
            return false;
        }
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        var user = await users.GetUserAsync(principal);
        if (user is null)
        {
            return false;
        }
        var value = ReaderPreferences.Name(theme);
        var existing = (await users.GetClaimsAsync(user)).Where(c => c.Type == ClaimType).ToList();
        if (existing.Count == 1 && existing[0].Value == value)
        {
            return true;
        }
        if (existing.Count > 0)
        {
            await users.RemoveClaimsAsync(user, existing);
        }
        var result = await users.AddClaimAsync(user, new Claim(ClaimType, value));
        return result.Succeeded;
    }

    private static bool IsAccount(ClaimsPrincipal principal) =>
        principal.Identity?.IsAuthenticated == true && principal.HasClaim(ClaimNames.Kind, ClaimNames.KindAccount);
}
