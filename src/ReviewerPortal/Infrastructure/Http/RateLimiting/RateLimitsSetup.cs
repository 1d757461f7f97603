using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Claims;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Infrastructure.Http.RateLimiting;

/// <summary>
/// Request rate limits (<c>Microsoft.AspNetCore.RateLimiting</c>) with one bucket per caller: agent keys, accounts,
/// and client addresses for anonymous requests and sign-in posts. Over the limit: 429 ProblemDetails with
/// <c>Retry-After</c>, naming the setting. Not to be confused with a policy's <c>throttle</c> rules (429 with
/// <c>ruleId</c>), which count submissions per tenant and rule across the fleet: both apply.
/// </summary>
public static class RateLimitsSetup
{
    public const string SignInPath = "/account/login";

    public static IHostApplicationBuilder AddRateLimits(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<RateLimitOptions>().BindConfiguration(RateLimitOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<CallerRateLimiter>();
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<CallerRateLimiter>((o, limiter) =>
        {
            o.GlobalLimiter = limiter;
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.OnRejected = RejectAsync;
        });
        return builder;
    }

    /// <summary>After authentication (the cookie) and before authorization, so a flood is turned away before any work.</summary>
    public static IApplicationBuilder UseRateLimits(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<RateLimitOptions>>().Value;
        if (!options.Enabled)
        {
            return app;
        }
        app.Use(async (context, next) =>
        {
            if (await PartitionOfAsync(context, options) is { } partition)
            {
                context.Features.Set(partition);
            }
            await next(context);
        });
        return app.UseRateLimiter();
    }

    private static async Task<RateLimitPartition?> PartitionOfAsync(HttpContext context, RateLimitOptions options)
    {
        var request = context.Request;
        if (request.Path.StartsWithSegments("/healthz"))
        {
            return null; // probes come from the load balancer's one address
        }
        if (HttpMethods.IsPost(request.Method) && request.Path.Equals(SignInPath, StringComparison.OrdinalIgnoreCase))
        {
            return new("signin:" + AddressOf(context), "RateLimits:SignIn", "address", options.SignIn);
        }
        var user = context.User;
        if (request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            // The API's scheme; its handler caches the result, so authorization does not look the key up again.
            var result = await context.AuthenticateAsync(ApiKeyAuthenticationHandler.SchemeName);
            user = result.Succeeded ? result.Principal : new ClaimsPrincipal();
        }
        if (user.Identity?.IsAuthenticated == true)
        {
            switch (user.FindFirstValue(ClaimNames.Kind))
            {
                case ClaimNames.KindAgent when user.FindFirstValue(ClaimNames.KeyHash) is { Length: > 0 } hash:
                    return new("key:" + hash, "RateLimits:PerKey", "agent key", options.PerKey);
                case ClaimNames.KindAccount when user.Identity.Name is { Length: > 0 } name:
                    return new("account:" + name.ToUpperInvariant(), "RateLimits:PerAccount", "account", options.PerAccount);
            }
        }
        return new("address:" + AddressOf(context), "RateLimits:PerAddress", "address", options.PerAddress);
    }

    /// <summary>The client address; IPv6 by its /64, which one client usually holds whole.</summary>
    private static string AddressOf(HttpContext context)
    {
        var address = context.Connection.RemoteIpAddress;
        if (address is null)
        {
            return "unknown";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes = address.GetAddressBytes();
            Array.Clear(bytes, 8, 8);
            return new IPAddress(bytes) + "/64";
        }
        return address.ToString();
    }

    private static async ValueTask RejectAsync(OnRejectedContext rejected, CancellationToken cancellationToken)
    {
        var context = rejected.HttpContext;
        var partition = context.Features.Get<RateLimitPartition>();
        var seconds = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
            ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds))
            : 1;
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        if (!Components.PortalAccess.IsApi(context.Request.Path)
            && context.Request.Headers.Accept.ToString().Contains("text/html", StringComparison.OrdinalIgnoreCase))
        {
            // A person at the sign-in form or on a page: words, not JSON (no script, no inline style: the CSP holds).
            context.Response.ContentType = "text/html; charset=utf-8";
            await context.Response.WriteAsync($"""
                <!DOCTYPE html>
                <html lang="en"><head><meta charset="utf-8" /><title>Too many requests · ReviewerPortal</title>
                <link href="/assets/css/portal.css" rel="stylesheet" /></head>
                <body><main class="rp-status-page"><h1 class="rp-h1">Too many requests.</h1>
                <p>Too many requests came from your {partition?.Who ?? "address"} in a short time. Wait {(seconds == 1 ? "a second" : $"{seconds} seconds")}, then <a href="{(HttpMethods.IsGet(context.Request.Method) ? System.Net.WebUtility.HtmlEncode(context.Request.Path + context.Request.QueryString) : "/")}">try again</a>.</p>
                </main></body></html>
                """, cancellationToken);
            return;
        }
        var detail = partition is null
            ? $"Too many requests. Retry after {seconds} s."
            : $"Too many requests from this {partition.Who}: {partition.Setting} allows {partition.Limit}. Retry after {seconds} s.";
        await Problems.Of(StatusCodes.Status429TooManyRequests, "rate_limited", detail,
                new Dictionary<string, object?> { ["limit"] = partition?.Setting, ["retryAfter"] = seconds })
            .ExecuteAsync(context);
    }
}
