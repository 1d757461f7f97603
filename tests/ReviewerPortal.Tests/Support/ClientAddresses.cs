using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// Lets a test say which client address a request comes from (the in-memory test server has none): the
/// <see cref="Header"/> sets <c>Connection.RemoteIpAddress</c> before the app's own middleware runs. Test-only.
/// </summary>
public static class ClientAddresses
{
    public const string Header = "X-Test-Client-Address";

    public static void Add(IServiceCollection services) => services.AddSingleton<IStartupFilter, Filter>();

    private sealed class Filter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (context.Request.Headers.TryGetValue(Header, out var value) && IPAddress.TryParse(value, out var address))
                {
                    context.Connection.RemoteIpAddress = address;
                }
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
