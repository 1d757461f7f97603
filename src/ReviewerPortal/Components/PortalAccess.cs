using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Components.Endpoints;

namespace ReviewerPortal.Components;

/// <summary>
/// Forbidden and unknown pages answer as portal pages with their status (403, 404), never as a JSON problem or a
/// redirect to a page that does not exist; the API keeps its ProblemDetails.
/// </summary>
public static class PortalAccess
{
    /// <summary>Paths that answer machines: their errors stay RFC 7807 problems.</summary>
    public static bool IsApi(PathString path) =>
        path.StartsWithSegments("/api") || path.StartsWithSegments("/hubs") || path.StartsWithSegments("/healthz")
        || path.StartsWithSegments("/openapi") || path.StartsWithSegments("/_blazor") || path.StartsWithSegments("/_framework");

    public static IHostApplicationBuilder AddPortalAccess(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuthorizationMiddlewareResultHandler>();
        builder.Services.AddSingleton<IAuthorizationMiddlewareResultHandler, PortalPagesAuthorizationResultHandler>();
        // The open queues' shared reads (fresh after each change the change feed counts).
        builder.Services.AddSingleton<Pages.Queue.QueueReads>();
        return builder;
    }

    /// <summary>In place of <c>UseStatusCodePages()</c>: problems for the API, a portal page (<c>/error/{code}</c>) for the rest.</summary>
    public static IApplicationBuilder UsePortalStatusPages(this WebApplication app)
    {
        app.UseWhen(context => IsApi(context.Request.Path), api => api.UseStatusCodePages());
        app.UseWhen(context => !IsApi(context.Request.Path), pages => pages
            .UseStatusCodePagesWithReExecute("/error/{0}", createScopeForStatusCodePages: true)
            .Use(static (context, next) =>
            {
                // A page is re-executed with the request's method: only reads get the page (a form post keeps its status).
                if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method)
                    && context.Features.Get<Microsoft.AspNetCore.Diagnostics.IStatusCodePagesFeature>() is { } feature)
                {
                    feature.Enabled = false;
                }
                return next(context);
            }));
        return app;
    }
}

/// <summary>
/// A signed-in person refused a page (a component endpoint) gets the page's own "no access" rendering with 403 instead
/// of the cookie's redirect: the router's <c>AuthorizeRouteView</c> checks the same <c>[Authorize]</c> attributes and
/// renders <see cref="Shared.AccessDenied"/> in place of the page, so none of the page's code runs. Everything else
/// (the API, challenges of anonymous visitors) is handled as before.
/// </summary>
public sealed class PortalPagesAuthorizationResultHandler(AuthorizationMiddlewareResultHandler fallback) : IAuthorizationMiddlewareResultHandler
{
    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Forbidden
            && context.User.Identity?.IsAuthenticated == true
            && context.GetEndpoint()?.Metadata.GetMetadata<ComponentTypeMetadata>() is not null
            && !PortalAccess.IsApi(context.Request.Path))
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return next(context);
        }
        return fallback.HandleAsync(next, context, policy, authorizeResult);
    }
}
