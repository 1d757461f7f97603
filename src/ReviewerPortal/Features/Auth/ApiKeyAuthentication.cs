using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;

namespace ReviewerPortal.Features.Auth;

/// <summary>
/// <c>Authorization: Bearer &lt;secret&gt;</c> for agents (the key names the tenant) and for people's API tokens.
/// Only SHA-256 hashes of secrets are stored; lookups are cached briefly so a request costs no database read.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyPrincipals principals,
    IMemoryCache cache) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        string secret;
        if (header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            secret = header["Bearer ".Length..].Trim();
        }
        else if (Request.Path.StartsWithSegments("/hubs") && Request.Query["access_token"] is { Count: 1 } token)
        {
            // Browsers cannot set headers on WebSockets: SignalR sends the token in the query string there.
            secret = token.ToString();
        }
        else
        {
            return AuthenticateResult.NoResult();
        }
        if (secret.Length is 0 or > 512)
        {
            return AuthenticateResult.Fail("Malformed bearer token.");
        }
        var hash = HashSecret(secret);
        if (!cache.TryGetValue(CacheKey(hash), out ClaimsPrincipal? principal))
        {
            // Only known keys are cached: a key created a moment ago on another instance works here at once.
            principal = await principals.LoadAsync(hash, Context.RequestAborted);
            if (principal is not null)
            {
                cache.Set(CacheKey(hash), principal, CacheFor);
            }
        }
        return principal is null
            ? AuthenticateResult.Fail("Unknown or revoked key.")
            : AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    /// <summary>The lookup cache's entry of a key (dropped on every instance when the key is revoked).</summary>
    public static string CacheKey(string keyHash) => "apikey:" + keyHash;

    public static string HashSecret(string secret) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
}

/// <summary>Builds the principal of an agent key or a person's API token from the database (no cache).</summary>
public sealed class ApiKeyPrincipals(IDbContextFactory<AppDbContext> dbFactory)
{
    /// <summary>The principal of a key or token as the database says now; null when it is unknown or revoked.</summary>
    public async Task<ClaimsPrincipal?> LoadAsync(string hash, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.KeyHash == hash && k.RevokedAt == null, cancellationToken);
        if (key is null)
        {
            return null;
        }
        if (key.Kind == ApiKeyKind.Agent)
        {
            return Principal(key.Name, ClaimNames.KindAgent,
                [new Claim(ClaimNames.Tenant, key.Tenant ?? ""), new Claim(ClaimNames.KeyHash, hash)]);
        }
        var user = await db.Users.AsNoTracking().FirstOrDefaultAsync(u => u.UserName == key.UserName, cancellationToken);
        if (user is null)
        {
            return null;
        }
        var roles = await (from ur in db.UserRoles
                           join r in db.Roles on ur.RoleId equals r.Id
                           where ur.UserId == user.Id
                           select r.Name).ToListAsync(cancellationToken);
        return Principal(user.UserName!, ClaimNames.KindAccount,
            [new Claim(ClaimNames.KeyHash, hash), .. roles.Where(r => r is not null).Select(r => new Claim(ClaimTypes.Role, r!)),
                .. user.Email is { Length: > 0 } email ? [new Claim(ClaimTypes.Email, email)] : Array.Empty<Claim>()]);
    }

    private static ClaimsPrincipal Principal(string name, string kind, IEnumerable<Claim> extra) =>
        new(new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, name), new Claim(ClaimNames.Kind, kind), .. extra], ApiKeyAuthenticationHandler.SchemeName));
}

/// <summary>Creates keys and tokens; the secret is returned once and only its hash is kept.</summary>
public sealed class ApiKeyService(IDbContextFactory<AppDbContext> dbFactory, TimeProvider time)
{
    public static string NewSecret(string prefix) =>
        prefix + "_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    /// <summary>Registers a secret unless a key with that secret exists already.</summary>
    public async Task<ApiKey> EnsureAsync(string name, ApiKeyKind kind, string secret, string? tenant, string? userName,
        CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var hash = ApiKeyAuthenticationHandler.HashSecret(secret);
        var existing = await db.ApiKeys.FirstOrDefaultAsync(k => k.KeyHash == hash, cancellationToken);
        if (existing is not null)
        {
            return existing;
        }
        var key = new ApiKey
        {
            Name = name,
            Kind = kind,
            KeyHash = hash,
            Prefix = secret[..Math.Min(8, secret.Length)],
            Tenant = tenant,
            UserName = userName,
            CreatedAt = time.GetUtcNow(),
        };
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        return key;
    }

    public async Task<IReadOnlyList<ApiKey>> ListAgentKeysAsync(string tenant, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var keys = await db.ApiKeys.AsNoTracking().Where(k => k.Kind == ApiKeyKind.Agent && k.Tenant == tenant).ToListAsync(cancellationToken);
        return [.. keys.OrderByDescending(k => k.CreatedAt)];
    }

    /// <summary>Creates an agent key; the secret is returned here once and never again.</summary>
    public async Task<(ApiKey Key, string Secret)> CreateAgentKeyAsync(string tenant, string name, CancellationToken cancellationToken = default)
    {
        var secret = NewSecret("rpa");
        return (await EnsureAsync(name, ApiKeyKind.Agent, secret, tenant, null, cancellationToken), secret);
    }

    /// <summary>Revokes a tenant's agent key; says whether this call revoked it (false: it was revoked before, or is no key of the tenant).</summary>
    public async Task<(ApiKey? Key, bool RevokedNow)> RevokeAgentKeyAsync(string tenant, int id, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == id && k.Tenant == tenant && k.Kind == ApiKeyKind.Agent, cancellationToken);
        if (key is null || key.RevokedAt is not null)
        {
            return (key, false);
        }
        key.RevokedAt = time.GetUtcNow();
        await db.SaveChangesAsync(cancellationToken);
        return (key, true);
    }

    /// <summary>Registers an already-hashed secret (keys handed over through configuration).</summary>
    public async Task EnsureHashAsync(string name, ApiKeyKind kind, string keyHash, string? tenant, string? userName,
        CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        if (await db.ApiKeys.AnyAsync(k => k.KeyHash == keyHash, cancellationToken))
        {
            return;
        }
        db.ApiKeys.Add(new ApiKey
        {
            Name = name, Kind = kind, KeyHash = keyHash, Prefix = "(config)", Tenant = tenant, UserName = userName,
            CreatedAt = time.GetUtcNow(),
        });
        await db.SaveChangesAsync(cancellationToken);
    }
}

public static class IdentityRoleNames
{
    public static IdentityRole Create(string name) => new(name) { NormalizedName = name.ToUpperInvariant() };
}
