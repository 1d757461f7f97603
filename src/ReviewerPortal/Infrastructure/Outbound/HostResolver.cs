using System.Net;

namespace ReviewerPortal.Infrastructure.Outbound;

/// <summary>Resolves a host name to its addresses; the outbound check and the connection use the same answer.</summary>
public interface IHostResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}

/// <summary>The system resolver (DNS, hosts file).</summary>
public sealed class DnsHostResolver : IHostResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        Dns.GetHostAddressesAsync(host, cancellationToken);
}
