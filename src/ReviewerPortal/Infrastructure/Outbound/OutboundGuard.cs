using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Infrastructure.Outbound;

/// <summary>A connection the outbound rules refuse: the host or the address it resolved to is not a public one.</summary>
public sealed class OutboundRefusedException(string message) : IOException(message);

/// <summary>
/// Decides where the app may call out to (SSRF guard). A target is refused when its host, or any address it resolves
/// to, is loopback, link-local, private, CGNAT, unique-local, unspecified, multicast, reserved or a cloud metadata
/// address, in any spelling (<c>2130706433</c>, <c>0x7f.1</c>, <c>127.1</c>, <c>[::ffff:127.0.0.1]</c>, NAT64 and 6to4
/// forms), unless <see cref="OutboundOptions"/> allows it. The check runs when settings are saved and again at
/// connect time on the very addresses connected to (<see cref="ConnectAsync"/> for the webhook clients,
/// <see cref="ConnectSocketAsync"/> for SMTP), so a name that resolves differently later (DNS rebinding) gains nothing.
/// </summary>
public sealed class OutboundGuard(IOptionsMonitor<OutboundOptions> options, IHostResolver resolver, ILogger<OutboundGuard> logger)
{
    /// <summary>How long a save waits for DNS; a name that does not resolve by then is checked again at connect time.</summary>
    public static readonly TimeSpan SaveResolveTimeout = TimeSpan.FromSeconds(5);

    private enum Kind { Public, Private, Loopback, LinkLocal, Metadata, Reserved, Unspecified, Multicast }

    // Names that never need DNS to be known as local (they may not resolve at all outside the cloud that serves them).
    private static readonly Dictionary<string, Kind> KnownNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["localhost"] = Kind.Loopback,
        ["localhost.localdomain"] = Kind.Loopback,
        ["ip6-localhost"] = Kind.Loopback,
        ["ip6-loopback"] = Kind.Loopback,
        ["metadata"] = Kind.Metadata,
        ["metadata.google.internal"] = Kind.Metadata,
        ["metadata.goog"] = Kind.Metadata,
        ["instance-data"] = Kind.Metadata,
        ["instance-data.ec2.internal"] = Kind.Metadata,
    };

    private static readonly IPAddress[] MetadataAddresses =
    [
        IPAddress.Parse("169.254.169.254"), // AWS, GCP, Azure, OpenStack, DigitalOcean...
        IPAddress.Parse("169.254.170.2"), // AWS ECS task metadata
        IPAddress.Parse("169.254.170.23"), // AWS EKS pod identity
        IPAddress.Parse("100.100.100.200"), // Alibaba Cloud
        IPAddress.Parse("192.0.0.192"), // Oracle Cloud
        IPAddress.Parse("fd00:ec2::254"), // AWS over IPv6
        IPAddress.Parse("fd00:ec2::23"), // AWS EKS pod identity over IPv6
    ];

    private OutboundOptions Options => options.CurrentValue;

    /// <summary>Whether a tenant may send mail without TLS (<c>Outbound:AllowInsecureSmtp</c>).</summary>
    public bool InsecureSmtpAllowed => Options.AllowInsecureSmtp;

    /// <summary>Save time: whether a webhook URL may be called; null when it may, else why not (for a 400).</summary>
    public async Task<string?> CheckUrlAsync(Uri url, CancellationToken cancellationToken)
    {
        if (url.Scheme == Uri.UriSchemeHttp && !Options.AllowHttp)
        {
            return "Only https addresses: plain http (the body and its signature unencrypted) needs Outbound:AllowHttp.";
        }
        return await CheckHostAsync(url.IdnHost, cancellationToken); // the form the HTTP handler connects to
    }

    /// <summary>Save time: whether a host (a webhook's or an SMTP server's) may be called; null when it may, else why not.</summary>
    public async Task<string?> CheckHostAsync(string host, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(SaveResolveTimeout);
        try
        {
            await CheckedAddressesAsync(host, timeout.Token);
            return null;
        }
        catch (OutboundRefusedException ex)
        {
            return ex.Message;
        }
        catch (ArgumentException)
        {
            return $"'{host}' is not a host name or address.";
        }
        catch (Exception ex) when (ex is SocketException || ex is OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // Not resolvable from here (yet): nothing is refused on a guess; every connection is checked anyway.
            logger.LogInformation("Outbound host {Host} did not resolve at save time ({Message}); it is checked at connect time", host, ex.Message);
            return null;
        }
    }

    /// <summary>A <see cref="SocketsHttpHandler.ConnectCallback"/>: connects only to addresses that pass the check.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken) =>
        new NetworkStream(await ConnectSocketAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken), ownsSocket: true);

    /// <summary>Resolves <paramref name="host"/>, checks every address, and connects to the checked ones only.</summary>
    /// <exception cref="OutboundRefusedException">The host or one of its addresses is refused.</exception>
    public async Task<Socket> ConnectSocketAsync(string host, int port, CancellationToken cancellationToken)
    {
        var addresses = await CheckedAddressesAsync(host, cancellationToken);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, port, cancellationToken);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>The addresses of <paramref name="host"/>, every one allowed; otherwise throws naming the first refused.</summary>
    private async Task<IPAddress[]> CheckedAddressesAsync(string host, CancellationToken cancellationToken)
    {
        var o = Options;
        var name = Normalize(host);
        var listedName = o.AllowedHosts.Any(e => string.Equals(Normalize(e), name, StringComparison.OrdinalIgnoreCase));
        IPAddress[] addresses;
        if (IPAddress.TryParse(name, out var literal))
        {
            addresses = [literal];
        }
        else
        {
            if (!listedName && KnownKind(name) is { } known)
            {
                throw new OutboundRefusedException($"{name} is {Describe(known)}.{Advice(known)}");
            }
            addresses = await resolver.ResolveAsync(name, cancellationToken);
            if (addresses.Length == 0)
            {
                throw new SocketException((int)SocketError.HostNotFound);
            }
        }
        foreach (var address in addresses)
        {
            var kind = Classify(address);
            if (!Allowed(o, kind, address, listedName))
            {
                var what = $"{Display(address)} is {Describe(kind)}";
                throw new OutboundRefusedException(literal is null ? $"{name} resolves to {Display(address)}: {what}.{Advice(kind)}" : $"{what}.{Advice(kind)}");
            }
        }
        return addresses;
    }

    private static bool Allowed(OutboundOptions o, Kind kind, IPAddress address, bool listedName) => kind switch
    {
        Kind.Public => true,
        Kind.Unspecified or Kind.Multicast => false,
        Kind.Private when o.AllowPrivateNetworks => true,
        _ => listedName || o.AllowedHosts.Any(e => ListedAddress(e, address)),
    };

    private static bool ListedAddress(string entry, IPAddress address)
    {
        entry = Normalize(entry);
        var candidate = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        if (IPAddress.TryParse(entry, out var listed))
        {
            return (listed.IsIPv4MappedToIPv6 ? listed.MapToIPv4() : listed).Equals(WithoutScope(candidate));
        }
        return entry.Contains('/') && System.Net.IPNetwork.TryParse(entry, out var network) && network.Contains(candidate);
    }

    /// <summary>Whether an <c>Outbound:AllowedHosts</c> entry is a host name, an IP address or a CIDR range (empty: ignored).</summary>
    public static bool IsValidEntry(string? entry)
    {
        if (string.IsNullOrWhiteSpace(entry))
        {
            return true;
        }
        var e = Normalize(entry);
        return IPAddress.TryParse(e, out _) || e.Contains('/') && System.Net.IPNetwork.TryParse(e, out _)
            || Uri.CheckHostName(e) == UriHostNameType.Dns;
    }

    private static string Normalize(string host)
    {
        host = host.Trim();
        if (host.StartsWith('[') && host.EndsWith(']'))
        {
            host = host[1..^1];
        }
        return host.TrimEnd('.').ToLowerInvariant();
    }

    private static Kind? KnownKind(string name) =>
        KnownNames.TryGetValue(name, out var kind) ? kind
        : name.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase) ? Kind.Loopback
        : null;

    private static IPAddress WithoutScope(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes()) : address;

    private static string Display(IPAddress address) => WithoutScope(address).ToString();

    /// <summary>What kind of address this is, seen through IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms.</summary>
    private static Kind Classify(IPAddress address)
    {
        address = WithoutScope(address);
        if (MetadataAddresses.Contains(address))
        {
            return Kind.Metadata;
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return ClassifyV4(address.GetAddressBytes());
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return Classify(address.MapToIPv4());
        }
        var b = address.GetAddressBytes();
        if (address.Equals(IPAddress.IPv6Any))
        {
            return Kind.Unspecified;
        }
        if (address.Equals(IPAddress.IPv6Loopback))
        {
            return Kind.Loopback;
        }
        if (b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0)
        {
            return Classify(new IPAddress(b.AsSpan(12, 4))); // IPv4-compatible ::a.b.c.d (deprecated)
        }
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b)
        {
            // NAT64: 64:ff9b::/96 carries an IPv4 address; 64:ff9b:1::/48 is for local use.
            return b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0 ? Classify(new IPAddress(b.AsSpan(12, 4))) : Kind.Private;
        }
        if (b[0] == 0x20 && b[1] == 0x02)
        {
            return Classify(new IPAddress(b.AsSpan(2, 4))); // 6to4: 2002:a.b.c.d::/48
        }
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00)
        {
            return Kind.Reserved; // Teredo: the IPv4 address inside is obscured
        }
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        {
            return Kind.Reserved; // documentation
        }
        if (address.IsIPv6LinkLocal)
        {
            return Kind.LinkLocal;
        }
        if (address.IsIPv6SiteLocal || (b[0] & 0xfe) == 0xfc)
        {
            return Kind.Private; // fec0::/10 (deprecated), fc00::/7 unique-local
        }
        if (address.IsIPv6Multicast)
        {
            return Kind.Multicast;
        }
        return (b[0] & 0xe0) == 0x20 ? Kind.Public : Kind.Reserved; // global unicast is 2000::/3
    }

    private static Kind ClassifyV4(byte[] b) => b switch
    {
        [0, ..] => Kind.Unspecified, // 0.0.0.0/8 "this network": 0.0.0.0 reaches the host itself
        [127, ..] => Kind.Loopback,
        [169, 254, ..] => Kind.LinkLocal,
        [10, ..] => Kind.Private,
        [172, >= 16 and <= 31, ..] => Kind.Private,
        [192, 168, ..] => Kind.Private,
        [100, >= 64 and <= 127, ..] => Kind.Private, // CGNAT 100.64/10
        [>= 224 and <= 239, ..] => Kind.Multicast,
        [>= 240, ..] => Kind.Reserved, // 240/4 and the broadcast address
        [192, 0, 0, _] or [192, 0, 2, _] or [198, 51, 100, _] or [203, 0, 113, _] => Kind.Reserved, // protocol assignments, documentation
        [198, 18 or 19, ..] => Kind.Reserved, // benchmarking
        _ => Kind.Public,
    };

    private static string Describe(Kind kind) => kind switch
    {
        Kind.Loopback => "a loopback address (this host)",
        Kind.LinkLocal => "a link-local address",
        Kind.Private => "a private network address",
        Kind.Metadata => "a cloud metadata address",
        Kind.Unspecified => "an unspecified address",
        Kind.Multicast => "a multicast address",
        _ => "a reserved address",
    };

    private static string Advice(Kind kind) => kind switch
    {
        Kind.Unspecified or Kind.Multicast => " Outbound calls never go there, whatever Outbound:AllowedHosts lists.",
        Kind.Private => " Outbound calls go to public addresses only, unless Outbound:AllowPrivateNetworks is on or Outbound:AllowedHosts lists the host.",
        _ => " Outbound calls go to public addresses only, unless Outbound:AllowedHosts lists the host.",
    };
}
