using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ReviewerPortal.Infrastructure.Outbound;

public static class OutboundSetup
{
    /// <summary>The outbound rules (<c>Outbound:*</c>), the resolver and the guard that applies them.</summary>
    public static IServiceCollection AddOutbound(this IServiceCollection services)
    {
        services.AddOptions<OutboundOptions>().BindConfiguration(OutboundOptions.Section)
            .Validate(o => o.AllowedHosts.All(OutboundGuard.IsValidEntry),
                "Outbound:AllowedHosts: each entry is a host name, an IP address or a CIDR range (10.20.0.0/16).")
            .ValidateOnStart();
        services.TryAddSingleton<IHostResolver, DnsHostResolver>();
        services.TryAddSingleton<OutboundGuard>();
        return services;
    }

    /// <summary>
    /// A named client for calls to addresses the tenants set: every connection goes through the guard (the resolved
    /// address is checked, so DNS rebinding gains nothing), redirects are never followed (they would re-send the body
    /// and its signature to an address nobody set), and no proxy is used (it would resolve the name out of sight).
    /// </summary>
    public static IHttpClientBuilder AddOutboundHttpClient(this IServiceCollection services, string name) =>
        services.AddHttpClient(name).ConfigurePrimaryHttpMessageHandler(sp => new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            ConnectCallback = sp.GetRequiredService<OutboundGuard>().ConnectAsync,
        });
}
