namespace ReviewerPortal.Infrastructure.Outbound;

/// <summary>
/// Where the app may call out to (tenant webhooks, dispatch webhooks, SMTP servers). By default only public addresses
/// over https: loopback, link-local, private, CGNAT, unique-local, unspecified, multicast, reserved and cloud metadata
/// addresses are refused when the settings are saved and again, on the resolved address, at connect time.
/// </summary>
public sealed class OutboundOptions
{
    public const string Section = "Outbound";

    /// <summary>Webhooks may be plain <c>http</c> (the body and its signature then travel unencrypted). Off by default: https only.</summary>
    public bool AllowHttp { get; set; }

    /// <summary>
    /// Private networks (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) may be called: for an on-premises install
    /// whose receivers are internal. Loopback, link-local and metadata addresses stay refused (list them in
    /// <see cref="AllowedHosts"/> to call them).
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>
    /// Host names, IP addresses or CIDR ranges (<c>hooks.corp.example</c>, <c>10.1.2.3</c>, <c>10.20.0.0/16</c>) called
    /// whatever address they have (loopback, private, metadata alike); never unspecified (<c>0.0.0.0</c>, <c>::</c>)
    /// or multicast addresses. Empty entries are ignored.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>A tenant may set <c>notifications.smtp.security: none</c> (mail and SMTP credentials in plain text). Off by default.</summary>
    public bool AllowInsecureSmtp { get; set; }
}
