using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// Headers a security review expects on every answer (no MIME sniffing, no referrer to other sites, no powerful
/// browser features), a Content-Security-Policy on pages, HSTS over HTTPS outside Development, and no Server banner.
/// </summary>
public static class SecurityHeaders
{
    /// <summary>
    /// The pages' policy. Scripts only from this site (blazor.web.js, MudBlazor.min.js, assets/js/portal.js: no inline
    /// script, no eval); the circuit's WebSocket is same-origin, which <c>'self'</c> covers for ws:/wss: in CSP Level 3
    /// browsers. Styles allow <c>'unsafe-inline'</c> and nothing else inline: MudBlazor sets <c>style</c> attributes on
    /// its components and Blazor's reconnect dialog adds a style element.
    /// </summary>
    public const string PagePolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
        "connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'";

    public const string PermissionsPolicy =
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), midi=(), magnetometer=(), " +
        "gyroscope=(), accelerometer=(), display-capture=()";

    public static IHostApplicationBuilder AddSecurityHeaders(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<KestrelServerOptions>(o => o.AddServerHeader = false);
        builder.Services.AddHsts(o =>
        {
            o.MaxAge = TimeSpan.FromDays(365);
            o.IncludeSubDomains = false; // the portal does not speak for sibling hosts
        });
        return builder;
    }

    /// <summary>First in the pipeline, so error pages, problems and static files carry the headers too.</summary>
    public static IApplicationBuilder UseSecurityHeaders(this WebApplication app)
    {
        app.Use(static (context, next) =>
        {
            context.Response.OnStarting(static state =>
            {
                var response = ((HttpContext)state).Response;
                var headers = response.Headers;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "strict-origin-when-cross-origin";
                headers["Permissions-Policy"] = PermissionsPolicy;
                headers.Remove("Server");
                if (response.ContentType is { } type && type.StartsWith("text/html", StringComparison.OrdinalIgnoreCase))
                {
                    headers.ContentSecurityPolicy = PagePolicy;
                    headers.XFrameOptions = "DENY"; // for browsers without frame-ancestors
                }
                return Task.CompletedTask;
            }, context);
            return next(context);
        });
        if (!app.Environment.IsDevelopment())
        {
            app.UseHsts(); // only answers over HTTPS get the header
        }
        return app;
    }
}
