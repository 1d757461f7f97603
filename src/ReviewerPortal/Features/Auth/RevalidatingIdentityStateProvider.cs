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
public sealed class RevalidatingIdentityStateProvider : RevalidatingServerAuthenticationStateProvider
{
    private readonly IServiceScopeFactory scopes;
    private readonly IOptions<AuthOptions> auth;
    private readonly IOptions<IdentityOptions> identity;
    private readonly AccountChanges changes;
    private readonly ILogger _logger;

    public RevalidatingIdentityStateProvider(ILoggerFactory loggerFactory, IServiceScopeFactory scopes, IOptions<AuthOptions> auth,
        IOptions<IdentityOptions> identity, AccountChanges changes) : base(loggerFactory)
    {
        this.scopes = scopes;
        this.auth = auth;
        this.identity = identity;
        this.changes = changes;
        _logger = loggerFactory.CreateLogger<RevalidatingIdentityStateProvider>();
        changes.Changed += OnAccountChanged;
    }

    /// <summary>An announced change of this page's account is checked at once (within seconds of a sign-out elsewhere).</summary>
    private void OnAccountChanged(string userName) => _ = CheckNowAsync(userName);

    private async Task CheckNowAsync(string userName)
    {
        try
        {
            var state = await GetAuthenticationStateAsync();
            if (state.User.Identity?.IsAuthenticated == true && string.Equals(state.User.Identity.Name, userName, StringComparison.OrdinalIgnoreCase)
                && !await ValidateAuthenticationStateAsync(state, CancellationToken.None))
            {
                SetAuthenticationState(Task.FromResult(new AuthenticationState(new ClaimsPrincipal(new ClaimsIdentity()))));
            }
        }
        catch (Exception ex)
        {
            _logger.LogWarning(ex, "Re-checking an open page after an account change failed; its periodic check follows");
        }
    }

    protected override void Dispose(bool disposing)
    {
        changes.Changed -= OnAccountChanged;
        base.Dispose(disposing);
    }

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
