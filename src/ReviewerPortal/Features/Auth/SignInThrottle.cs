using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// Counts failed password sign-ins per source in Redis (shared by every instance): per account name from one client
/// address, per client address, and per account name. A source over its limit is refused until its window ends; the
/// account is never locked for its owner, and an unknown name counts exactly like a real one.
/// </summary>
public sealed class SignInThrottle(RedisConnection redis, IOptionsMonitor<AuthOptions> options)
{
    public const string Pair = "pair";
    public const string Address = "addr";
    public const string Account = "name";

    /// <summary>Whether any of the source's counters is at its limit.</summary>
    public async Task<bool> IsThrottledAsync(IPAddress? address, string userName)
    {
        var counters = Counters(address, userName);
        var values = await Task.WhenAll(counters.Select(c => redis.Database.StringGetAsync(c.Key)));
        return counters.Zip(values).Any(p => p.Second.TryParse(out long n) && n >= p.First.Limit);
    }

    /// <summary>Counts a failure; answers the scopes whose limit this failure reached (so the throttle is audited once).</summary>
    public async Task<IReadOnlyList<string>> FailedAsync(IPAddress? address, string userName)
    {
        var window = ((long)options.CurrentValue.SignIn.Window.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);
        var counters = Counters(address, userName);
        var counts = await Task.WhenAll(counters.Select(c => redis.Database.ScriptEvaluateAsync(LuaScripts.SignInFail, [c.Key], [window])));
        return [.. counters.Zip(counts).Where(p => (long)p.Second == p.First.Limit).Select(p => p.First.Scope)];
    }

    /// <summary>A success clears the failures of that name from that address (not the address's or the name's totals).</summary>
    public Task SucceededAsync(IPAddress? address, string userName) =>
        redis.Database.KeyDeleteAsync(RedisKeys.SignInFailures(Pair, Hash(Source(address) + "|" + Normalize(userName))));

    /// <summary>The client address as counted: IPv4-mapped IPv6 as IPv4; "unknown" when the server has none.</summary>
    public static string Source(IPAddress? address) =>
        address is null ? "unknown" : (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    private List<(string Scope, RedisKey Key, long Limit)> Counters(IPAddress? address, string userName)
    {
        var o = options.CurrentValue.SignIn;
        var source = Source(address);
        var name = Normalize(userName);
        List<(string, RedisKey, long)> counters = [(Pair, RedisKeys.SignInFailures(Pair, Hash(source + "|" + name)), o.MaxFailuresPerWindow)];
        if (o.MaxFailuresPerAddress > 0)
        {
            counters.Add((Address, RedisKeys.SignInFailures(Address, Hash(source)), o.MaxFailuresPerAddress));
        }
        if (o.MaxFailuresPerAccount > 0)
        {
            counters.Add((Account, RedisKeys.SignInFailures(Account, Hash(name)), o.MaxFailuresPerAccount));
        }
        return counters;
    }

    private static string Normalize(string userName) => userName.Trim().ToUpperInvariant();

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..32];
}
