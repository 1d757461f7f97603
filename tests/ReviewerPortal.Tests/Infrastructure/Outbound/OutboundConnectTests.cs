using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Outbound;

/// <summary>
/// The check is made again on the address actually connected to (a <c>SocketsHttpHandler.ConnectCallback</c> for
/// webhooks, a socket opened after the check for SMTP), so neither a name that resolves elsewhere at send time (DNS
/// rebinding) nor an allowance withdrawn since the save reaches a blocked address. A refused connect is a failed
/// delivery, recorded like any other.
/// </summary>
public sealed class OutboundConnectTests
{
    private const string Secret = "outbound-test-secret-0123";

    [Fact]
    public async Task A_host_allowed_when_saved_but_not_at_send_is_never_connected_to()
    {
        await using var listener = ConnectionCounter.Start();
        await using var smtp = SmtpSink.Start();
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Dispatch:Enabled"] = "false",
            ["Notifications:Enabled"] = "false",
            ["Outbound:AllowHttp"] = "true",
            ["Outbound:AllowedHosts:0"] = "localhost", // allowed while the settings are saved...
            ["Outbound:AllowInsecureSmtp"] = "true",
        });
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = $"http://localhost:{listener.Port}/dispatch", secret = Secret },
            notifications = new
            {
                webhookUrl = $"http://localhost:{listener.Port}/notify",
                webhookSecret = Secret,
                smtp = new { host = "localhost", port = smtp.Port, from = "portal@example.invalid", to = new[] { "team@example.invalid" }, security = "none" },
            },
        })).StatusCode);
        // ...and no longer when they are used (the operator took the allowance back).
        app.Services.GetRequiredService<IOptionsMonitor<OutboundOptions>>().CurrentValue.AllowedHosts.Clear();

        var id = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.Equal(0, listener.Connections);
        Assert.Empty(smtp.Messages);
        Assert.Contains(await ReasonsAsync(app, "dispatch_error"), r => r.Contains("loopback", StringComparison.Ordinal));
        var failures = (await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/notifications")).Json()).GetProperty("recentFailures");
        Assert.Contains(failures.EnumerateArray(), f => f.Str("channel") == "webhook" && f.Str("error").Contains("loopback", StringComparison.Ordinal));
        Assert.Contains(failures.EnumerateArray(), f => f.Str("channel") == "email" && f.Str("error").Contains("loopback", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_name_that_resolves_to_a_public_address_when_saved_and_to_loopback_when_sent_is_refused_at_connect()
    {
        await using var listener = ConnectionCounter.Start();
        await using var smtp = SmtpSink.Start();
        var dns = new FakeHostResolver().Map("rebind.test", "93.184.215.14");
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Dispatch:Enabled"] = "false",
            ["Notifications:Enabled"] = "false",
            ["Outbound:AllowHttp"] = "true",
            ["Outbound:AllowedHosts:0"] = "",
            ["Outbound:AllowInsecureSmtp"] = "true",
        }, services: dns.Install);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = $"http://rebind.test:{listener.Port}/dispatch", secret = Secret },
            notifications = new
            {
                webhookUrl = $"http://rebind.test:{listener.Port}/notify",
                webhookSecret = Secret,
                smtp = new { host = "rebind.test", port = smtp.Port, from = "portal@example.invalid", to = new[] { "team@example.invalid" }, security = "none" },
            },
        })).StatusCode);
        dns.Map("rebind.test", "127.0.0.1"); // the attacker's DNS answers differently now

        var id = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.Equal(0, listener.Connections);
        Assert.Empty(smtp.Messages);
        Assert.Contains(await ReasonsAsync(app, "dispatch_error"), r => r.Contains("127.0.0.1", StringComparison.Ordinal));
        var failures = (await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/notifications")).Json()).GetProperty("recentFailures");
        Assert.Contains(failures.EnumerateArray(), f => f.Str("channel") == "webhook" && f.Str("error").Contains("127.0.0.1 is a loopback address", StringComparison.Ordinal));
        Assert.Contains(failures.EnumerateArray(), f => f.Str("channel") == "email" && f.Str("error").Contains("127.0.0.1 is a loopback address", StringComparison.Ordinal));
    }

    private static async Task<List<string>> ReasonsAsync(TestApp app, string action)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        return await db.AuditEntries.Where(e => e.Action == action).Select(e => e.Reason ?? "").ToListAsync();
    }

    /// <summary>A loopback port that counts the connections made to it (and closes each at once).</summary>
    private sealed class ConnectionCounter : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task _loop;
        private int _connections;

        private ConnectionCounter()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _loop = Task.Run(async () =>
            {
                while (true)
                {
                    try
                    {
                        using var client = await _listener.AcceptTcpClientAsync();
                        Interlocked.Increment(ref _connections);
                    }
                    catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
                    {
                        return;
                    }
                }
            });
        }

        public int Port { get; }
        public int Connections => Volatile.Read(ref _connections);

        public static ConnectionCounter Start() => new();

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _loop;
        }
    }
}
