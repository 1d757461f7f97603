using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// A local SMTP server inside the test run: speaks enough of RFC 5321 for <c>SmtpClient</c> (EHLO, MAIL, RCPT, DATA,
/// QUIT), keeps every message, and can refuse the first N messages with a 451 (a server that is "down").
/// </summary>
public sealed class SmtpSink : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _refuse;

    private readonly (string User, string Password)? _credentials;

    private readonly X509Certificate2? _certificate;
    private int _tlsStarted;

    private SmtpSink(int refuseFirst, (string User, string Password)? credentials, X509Certificate2? certificate)
    {
        _refuse = refuseFirst;
        _credentials = credentials;
        _certificate = certificate;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptAsync);
    }

    public int Port { get; }
    public List<Message> Messages { get; } = [];

    /// <summary>Whether any client got as far as <c>MAIL FROM</c> (the envelope, sent in plain text on this server).</summary>
    public bool SawMail { get; private set; }

    /// <summary>The user name a client authenticated as (with <c>credentials</c>: AUTH PLAIN required before MAIL).</summary>
    public string? AuthenticatedAs { get; private set; }

    /// <summary>How many clients took STARTTLS up (then met the sink's self-signed certificate).</summary>
    public int TlsStarted => Volatile.Read(ref _tlsStarted);

    public static SmtpSink Start(int refuseFirst = 0, (string User, string Password)? credentials = null) => new(refuseFirst, credentials, null);

    /// <summary>A sink that offers STARTTLS with a self-signed certificate for 127.0.0.1 (trusted by nobody).</summary>
    public static SmtpSink StartWithUntrustedTls()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return new(0, null, X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null));
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using var _ = client;
        await using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.ASCII);
        await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
        await writer.WriteLineAsync("220 sink ESMTP");
        string? from = null;
        var to = new List<string>();
        while (await reader.ReadLineAsync() is { } line)
        {
            var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                case "HELO":
                    var extensions = new List<string> { "sink" };
                    if (_credentials is not null)
                    {
                        extensions.Add("AUTH PLAIN");
                    }
                    if (_certificate is not null)
                    {
                        extensions.Add("STARTTLS");
                    }
                    await writer.WriteLineAsync(string.Join("\r\n", extensions.Select((e, i) => (i == extensions.Count - 1 ? "250 " : "250-") + e)));
                    break;
                case "STAR" when _certificate is not null:
                    Interlocked.Increment(ref _tlsStarted);
                    await writer.WriteLineAsync("220 ready to start TLS");
                    await using (var tls = new SslStream(stream))
                    {
                        try
                        {
                            // With TLS 1.3 the server's side may complete before the client refuses the certificate.
                            await tls.AuthenticateAsServerAsync(_certificate);
                            await tls.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false);
                        }
                        catch (Exception ex) when (ex is AuthenticationException or IOException)
                        {
                        }
                    }
                    return; // the sink speaks no SMTP over TLS: its certificate is trusted by nobody
                
                case "AUTH":
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var response = parts.Length > 2 ? parts[2] : null;
                    if (response is null)
                    {
                        await writer.WriteLineAsync("334 ");
                        response = await reader.ReadLineAsync();
                    }
                    var plain = Encoding.UTF8.GetString(Convert.FromBase64String(response ?? "")).Split('\0');
                    if (_credentials is { } expected && plain.Length == 3 && plain[1] == expected.User && plain[2] == expected.Password)
                    {
                        AuthenticatedAs = plain[1];
                        await writer.WriteLineAsync("235 authenticated");
                    }
                    else
                    {
                        await writer.WriteLineAsync("535 authentication failed");
                    }
                    break;
                case "MAIL" when _credentials is not null && AuthenticatedAs is null:
                    await writer.WriteLineAsync("530 authentication required");
                    break;
                case "MAIL":
                    SawMail = true;
                    from = Address(line);
                    to.Clear();
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "RCPT":
                    to.Add(Address(line));
                    await writer.WriteLineAsync("250 OK");
                    break;
                case "DATA":
                    await writer.WriteLineAsync("354 go ahead");
                    var data = new StringBuilder();
                    while (await reader.ReadLineAsync() is { } d && d != ".")
                    {
                        data.Append(d.StartsWith("..", StringComparison.Ordinal) ? d[1..] : d).Append('\n');
                    }
                    if (Interlocked.Decrement(ref _refuse) >= 0)
                    {
                        await writer.WriteLineAsync("451 try again later");
                        break;
                    }
                    lock (Messages)
                    {
                        Messages.Add(new Message(from ?? "", [.. to], data.ToString()));
                    }
                    await writer.WriteLineAsync("250 queued");
                    break;
                case "QUIT":
                    await writer.WriteLineAsync("221 bye");
                    return;
                default:
                    await writer.WriteLineAsync("250 OK");
                    break;
            }
        }
    }

    private static string Address(string line)
    {
        var start = line.IndexOf('<');
        var end = line.IndexOf('>');
        return start >= 0 && end > start ? line[(start + 1)..end] : line;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _certificate?.Dispose();
    }

    public sealed record Message(string From, IReadOnlyList<string> To, string Data)
    {
        public string? Header(string name) =>
            Data.Split('\n').FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))?[(name.Length + 1)..].Trim();
    }
}
