using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// A real OpenID provider for the sign-in tests: an OpenIddict 7 server (authorization code flow, PKCE required) on its
/// own Kestrel host on a loopback port, in degraded mode (one registered client, checked by the handlers below; no
/// database). Its <c>/login</c> signs in <see cref="User"/> (the claims a test sets) with the provider's own cookie.
/// <see cref="Tamper"/> lets a test play the attacker who swaps the ID token the portal receives (unsigned, signed with
/// another key, or from another issuer signed with the real key), or serves a discovery document naming another issuer.
/// </summary>
public sealed class TestOidcProvider : IAsyncDisposable
{
    public const string ClientId = "reviewer-portal";
    public const string ClientSecret = "test-client-secret-0123456789abcdef";

    private readonly WebApplication _app;
    private readonly RsaSecurityKey _signingKey;

    public enum Tampering
    {
        None,
        UnsignedIdToken,
        IdTokenSignedWithAnotherKey,
        IdTokenFromAnotherIssuer,
        DiscoveryNamesAnotherIssuer,
    }

    private TestOidcProvider(WebApplication app, RsaSecurityKey signingKey)
    {
        _app = app;
        _signingKey = signingKey;
    }

    /// <summary>The claims <c>/login</c> signs in (at least <c>sub</c>).</summary>
    public List<Claim> User { get; set; } = [];

    public Tampering Tamper { get; set; }

    /// <summary>Redirect URIs the client may use (set by the test: the portal's callback address).</summary>
    public HashSet<string> RedirectUris { get; } = new(StringComparer.Ordinal);

    public string Authority { get; private set; } = "";

    /// <summary>The settings that point the portal at this provider.</summary>
    public Dictionary<string, string?> PortalSettings(string displayName = "Test IdP") => new()
    {
        ["Authentication:Oidc:Authority"] = Authority,
        ["Authentication:Oidc:ClientId"] = ClientId,
        ["Authentication:Oidc:ClientSecret"] = ClientSecret,
        ["Authentication:Oidc:DisplayName"] = displayName,
        ["Authentication:Oidc:RequireHttpsMetadata"] = "false",
        ["Authentication:Oidc:Scopes:0"] = "openid",
        ["Authentication:Oidc:Scopes:1"] = "profile",
        ["Authentication:Oidc:Scopes:2"] = "email",
    };

    public static async Task<TestOidcProvider> StartAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing", ApplicationName = typeof(TestOidcProvider).Assembly.GetName().Name });
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        var signingKey = new RsaSecurityKey(RSA.Create(2048)) { KeyId = "test-provider-key" };
        TestOidcProvider? self = null;
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(o =>
            {
                o.Cookie.Name = "test-idp.session";
                o.LoginPath = "/login";
            });
        builder.Services.AddOpenIddict().AddServer(o =>
        {
            o.SetAuthorizationEndpointUris("connect/authorize").SetTokenEndpointUris("connect/token");
            o.AllowAuthorizationCodeFlow().RequireProofKeyForCodeExchange();
            o.RegisterScopes(Scopes.OpenId, Scopes.Profile, Scopes.Email);
            o.AddSigningKey(signingKey);
            o.AddEncryptionKey(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)));
            o.EnableDegradedMode();
            o.DisableTokenStorage();
            o.DisableAuthorizationStorage();
            o.UseAspNetCore().EnableAuthorizationEndpointPassthrough().DisableTransportSecurityRequirement();
            o.AddEventHandler<OpenIddictServerEvents.ValidateAuthorizationRequestContext>(h => h.UseInlineHandler(context =>
            {
                if (context.ClientId != ClientId)
                {
                    context.Reject(Errors.InvalidClient, "Unknown client.");
                }
                else if (context.RedirectUri is null || !self!.RedirectUris.Contains(context.RedirectUri))
                {
                    context.Reject(Errors.InvalidRequest, "Unregistered redirect_uri.");
                }
                return default;
            }));
            o.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(h => h.UseInlineHandler(context =>
            {
                if (context.Request.ClientId != ClientId || context.Request.ClientSecret != ClientSecret)
                {
                    context.Reject(Errors.InvalidClient, "Wrong client credentials.");
                }
                return default;
            }));
        });

        var app = builder.Build();
        self = new TestOidcProvider(app, signingKey);
        app.Use(self.TamperAsync);
        app.UseAuthentication();
        app.MapGet("/login", (Delegate)self.Login);
        app.MapMethods("/connect/authorize", ["GET", "POST"], (Delegate)Authorize);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self.Authority = address.TrimEnd('/') + "/";
        return self;
    }

    /// <summary>The provider's sign-in page: signs in the test's user and goes back to the authorization request.</summary>
    private async Task<IResult> Login(HttpContext context, string? returnUrl)
    {
        var identity = new ClaimsIdentity(User, CookieAuthenticationDefaults.AuthenticationScheme);
        await context.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity));
        return Results.LocalRedirect(returnUrl is { Length: > 0 } && returnUrl.StartsWith("/connect/authorize", StringComparison.Ordinal) ? returnUrl : "/");
    }

    private static async Task<IResult> Authorize(HttpContext context)
    {
        var request = context.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID request.");
        var session = await context.AuthenticateAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        if (!session.Succeeded)
        {
            return Results.Challenge(new AuthenticationProperties
            {
                RedirectUri = context.Request.PathBase + context.Request.Path + context.Request.QueryString,
            }, [CookieAuthenticationDefaults.AuthenticationScheme]);
        }
        var identity = new ClaimsIdentity(session.Principal!.Claims, TokenValidationParameters.DefaultAuthenticationType, Claims.Name, Claims.Role);
        identity.SetScopes(request.GetScopes());
        identity.SetDestinations(_ => [Destinations.IdentityToken, Destinations.AccessToken]);
        return Results.SignIn(new ClaimsPrincipal(identity), properties: null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>Rewrites what the portal receives, as a man in the middle or a forged provider would.</summary>
    private async Task TamperAsync(HttpContext context, RequestDelegate next)
    {
        var tamper = Tamper;
        var path = context.Request.Path.Value ?? "";
        var rewrite = (tamper, path) switch
        {
            (Tampering.UnsignedIdToken or Tampering.IdTokenSignedWithAnotherKey or Tampering.IdTokenFromAnotherIssuer, "/connect/token") => true,
            (Tampering.DiscoveryNamesAnotherIssuer, "/.well-known/openid-configuration") => true,
            _ => false,
        };
        if (!rewrite)
        {
            await next(context);
            return;
        }
        var original = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = original;
        }
        var json = JsonNode.Parse(Encoding.UTF8.GetString(buffer.ToArray()))!.AsObject();
        if (path == "/connect/token" && json["id_token"] is { } idToken)
        {
            json["id_token"] = Forge(idToken.GetValue<string>(), tamper);
        }
        else if (path != "/connect/token")
        {
            json["issuer"] = "https://issuer.evil.example/";
        }
        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString());
        context.Response.ContentLength = bytes.Length;
        await original.WriteAsync(bytes);
    }

    private string Forge(string jwt, Tampering how)
    {
        var parts = jwt.Split('.');
        var header = JsonNode.Parse(Base64UrlEncoder.Decode(parts[0]))!.AsObject();
        var payload = JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!.AsObject();
        switch (how)
        {
            case Tampering.UnsignedIdToken:
                header["alg"] = "none";
                return Base64UrlEncoder.Encode(header.ToJsonString()) + "." + parts[1] + ".";
            case Tampering.IdTokenSignedWithAnotherKey:
                payload["sub"] = "someone-else";
                return Sign(header, payload, RSA.Create(2048));
            default:
                payload["iss"] = "https://issuer.evil.example/";
                return Sign(header, payload, _signingKey.Rsa!);
        }
    }

    private static string Sign(JsonObject header, JsonObject payload, RSA key)
    {
        var input = Base64UrlEncoder.Encode(header.ToJsonString()) + "." + Base64UrlEncoder.Encode(payload.ToJsonString());
        var signature = key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return input + "." + Base64UrlEncoder.Encode(signature);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
