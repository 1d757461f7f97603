using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// Tells every instance at once that an account's sessions ended (it signed out, its password or roles changed, it was
/// deleted): open portal pages of that account re-check it within seconds instead of at their next periodic stamp
/// check, and hub connections are re-checked with the account's current roles.
/// </summary>
public sealed class AccountChanges(
    RedisConnection redis,
    Approvals.HubAccessWarden warden,
    TimeProvider time,
    Microsoft.Extensions.Options.IOptions<AuthOptions> auth,
    ILogger<AccountChanges> logger) : IHostedService
{
    public static RedisChannel Channel { get; } = RedisChannel.Literal("rp:account-changed");

    // Accounts announced within the last stamp-check interval, and when: older changes the periodic check covers.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _recent = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether the account changed after <paramref name="since"/> (a cookie issued before needs its stamp checked now).</summary>
    public bool ChangedAfter(string userName, DateTimeOffset? since) =>
        _recent.TryGetValue(userName, out var at) && (since is null || at >= since.Value);

    /// <summary>
    /// The cookie's principal check: Identity's security stamp validation, made at once (not at its next interval) when the
    /// account was announced as changed after the cookie was issued.
    /// </summary>
    public static Task ValidateCookieAsync(Microsoft.AspNetCore.Authentication.Cookies.CookieValidatePrincipalContext context)
    {
        var changes = context.HttpContext.RequestServices.GetRequiredService<AccountChanges>();
        if (context.Principal?.Identity?.Name is { } name && changes.ChangedAfter(name, context.Properties.IssuedUtc))
        {
            context.Properties.IssuedUtc = null; // the validator checks a ticket without an issue time straight away
        }
        return Microsoft.AspNetCore.Identity.SecurityStampValidator.ValidatePrincipalAsync(context);
    }

    /// <summary>Raised on every instance with the account's user name.</summary>
    public event Action<string>? Changed;

    public async Task AnnounceAsync(string userName)
    {
        try
        {
            await redis.Multiplexer.GetSubscriber().PublishAsync(Channel, userName);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The periodic stamp check (Auth:SecurityStampValidationInterval) still ends the sessions.
            logger.LogWarning(ex, "An account change could not be announced; open sessions end at their next stamp check");
        }
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = await redis.Multiplexer.GetSubscriber().SubscribeAsync(Channel);
        queue.OnMessage(message =>
        {
            var now = time.GetUtcNow();
            _recent[(string)message.Message!] = now;
            foreach (var (stale, _) in _recent.Where(r => now - r.Value > auth.Value.SecurityStampValidationInterval))
            {
                _recent.TryRemove(stale, out _);
            }
            Changed?.Invoke((string)message.Message!);
            warden.Wake();
        });
    }

    public Task StopAsync(CancellationToken cancellationToken) => RedisConnection.UnsubscribeQuietlyAsync(redis, Channel);
}
