using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ReviewerPortal.Infrastructure.Outbound;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// A resolver the test controls: the names it was given answer what the test says (and can change between save and
/// send, as a DNS rebinding attacker's would); every other name goes to the system resolver. No address it gives out
/// is ever connected to unless a test allows it.
/// </summary>
public sealed class FakeHostResolver : IHostResolver
{
    private readonly ConcurrentDictionary<string, IPAddress[]> _names = new(StringComparer.OrdinalIgnoreCase);

    public FakeHostResolver Map(string host, params string[] addresses)
    {
        _names[host] = [.. addresses.Select(IPAddress.Parse)];
        return this;
    }

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        _names.TryGetValue(host, out var addresses) ? Task.FromResult(addresses) : Dns.GetHostAddressesAsync(host, cancellationToken);

    /// <summary>For <c>TestApp.StartAsync(services: ...)</c>.</summary>
    public void Install(IServiceCollection services) => services.Replace(ServiceDescriptor.Singleton<IHostResolver>(this));
}
