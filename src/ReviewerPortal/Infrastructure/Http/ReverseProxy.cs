using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using IPNetwork = System.Net.IPNetwork;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// The proxies whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> the portal believes. Empty (the default):
/// nobody's, not even loopback's, since anybody can send the headers; the client is the connection's address.
/// </summary>
public sealed class ReverseProxyOptions : IValidatableObject
{
    public const string Section = "ReverseProxy";

    /// <summary>Addresses (<c>10.0.0.7</c>, <c>::1</c>) or networks in CIDR form (<c>10.0.0.0/8</c>) of the proxies.</summary>
    public List<string> TrustedProxies { get; set; } = [];

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        for (var i = 0; i < TrustedProxies.Count; i++)
        {
            if (!TryParse(TrustedProxies[i], out _))
            {
                yield return new ValidationResult(
                    $"{Section}:{nameof(TrustedProxies)}:{i} '{TrustedProxies[i]}' is neither an IP address nor a network in CIDR form.",
                    [nameof(TrustedProxies)]);
            }
        }
    }

    internal static bool TryParse(string entry, out IPNetwork network)
    {
        var text = entry.Trim();
        if (IPAddress.TryParse(text, out var address))
        {
            network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            return true;
        }
        return IPNetwork.TryParse(text, out network);
    }
}

public static class ReverseProxy
{
    public static IHostApplicationBuilder AddReverseProxySupport(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ReverseProxyOptions>().BindConfiguration(ReverseProxyOptions.Section)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ReverseProxyOptions>>((forwarded, proxies) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Only the named proxies: ASP.NET Core's defaults would believe any loopback sender.
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var entry in proxies.Value.TrustedProxies)
            {
                ReverseProxyOptions.TryParse(entry, out var network);
                forwarded.KnownIPNetworks.Add(network);
            }
            // Peel trusted hops off from the right until the first address that is not a trusted proxy: that is the
            // client, whatever the client wrote in front of it.
            forwarded.ForwardLimit = null;
            forwarded.RequireHeaderSymmetry = false;
        });
        return builder;
    }

    /// <summary>First in the pipeline, so HSTS, cookies, rate limits and sign-in throttling see the client.</summary>
    public static IApplicationBuilder UseReverseProxySupport(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<ReverseProxyOptions>>().Value.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }
        return app;
    }
}
