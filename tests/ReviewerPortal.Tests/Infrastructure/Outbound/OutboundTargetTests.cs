using System.Net;
using System.Net.Http.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Outbound;

/// <summary>
/// Webhook and SMTP targets are checked when they are saved (security issues: SSRF; outbound calls accept more forms
/// of loopback): with no allowance, every spelling of a loopback, link-local, private, metadata, unspecified or
/// multicast address, and every name that resolves to one, is a 400 naming the field, and nothing is saved.
/// </summary>
public sealed class OutboundTargetTests
{
    private const string Secret = "outbound-test-secret-0123";

    // A public address from the fake resolver: the save-time check passes, and nothing ever connects to it.
    private const string PublicAddress = "93.184.215.14";

    private static Task<TestApp> StartAsync(params (string Key, string? Value)[] settings)
    {
        var all = new Dictionary<string, string?>
        {
            ["Dispatch:Enabled"] = "false",
            ["Notifications:Enabled"] = "false",
            ["Outbound:AllowHttp"] = "true", // so each refusal below is for the address, not the scheme
            ["Outbound:AllowedHosts:0"] = "", // the test configuration's loopback allowance, off
            ["Outbound:AllowPrivateNetworks"] = "false",
            ["Outbound:AllowInsecureSmtp"] = "true",
        };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }
        var resolver = new FakeHostResolver()
            .Map("internal.test", "10.1.2.3")
            .Map("mixed.test", PublicAddress, "127.0.0.1")
            .Map("metadata.test", "169.254.169.254")
            .Map("v6loop.test", "::1")
            .Map("hooks.test", PublicAddress);
        return TestApp.StartAsync(settings: all, services: resolver.Install);
    }

    public static readonly string[] BlockedUrls =
    [
        "http://localhost:6379/",
        "http://LOCALHOST/",
        "http://localhost./",
        "http://app.localhost/",
        "http://127.0.0.1/",
        "http://127.0.0.2:8080/x",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.1/",
        "http://[::1]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[2002:7f00:1::1]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://10.0.0.5/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
        "http://[fd00:ec2::254]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://255.255.255.255/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://internal.test/hook",
        "http://mixed.test/hook",
        "http://metadata.test/",
        "http://v6loop.test/",
        "https://127.0.0.1/",
    ];

    public static readonly string[] BlockedSmtpHosts =
        ["localhost", "127.0.0.1", "2130706433", "0x7f.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.169.254", "10.0.0.5", "internal.test", "metadata.test"];

    [Fact]
    public async Task Every_form_of_a_blocked_address_is_refused_at_save_naming_the_field()
    {
        await using var app = await StartAsync();
        var ada = app.Account("ada");
        var accepted = new List<string>();

        foreach (var url in BlockedUrls)
        {
            await Expect400(new { dispatch = new { kind = "webhook", url, secret = Secret } }, "dispatch.url", url);
            await Expect400(new { notifications = new { webhookUrl = url, webhookSecret = Secret } }, "notifications.webhookUrl", url);
        }
        foreach (var host in BlockedSmtpHosts)
        {
            await Expect400(new { notifications = new { smtp = new { host, port = 25, from = "portal@example.invalid", security = "none" } } },
                "notifications.smtp.host", host);
        }

        Assert.Empty(accepted);
        var settings = await (await ada.GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(System.Text.Json.JsonValueKind.Null, JsonValueKind(settings, "notifications"));

        async Task Expect400(object body, string field, string target)
        {
            var response = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", body);
            if (response.StatusCode != HttpStatusCode.BadRequest
                || !(await response.Json()).GetProperty("errors").TryGetProperty(field, out var messages)
                || !messages[0].GetString()!.Contains("Outbound:", StringComparison.Ordinal))
            {
                accepted.Add($"{field} = {target}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
        }
    }

    [Fact]
    public async Task Plain_http_is_refused_unless_allowed_and_a_public_https_address_is_accepted()
    {
        await using var app = await StartAsync(("Outbound:AllowHttp", "false"));
        var ada = app.Account("ada");

        var http = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { dispatch = new { kind = "webhook", url = "http://hooks.test/x", secret = Secret } });
        var https = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = "https://hooks.test/x", secret = Secret },
            notifications = new { webhookUrl = "https://hooks.test/n", webhookSecret = Secret },
        });

        Assert.Equal(HttpStatusCode.BadRequest, http.StatusCode);
        Assert.Contains("https", (await http.Json()).GetProperty("errors").GetProperty("dispatch.url")[0].GetString());
        Assert.Equal(HttpStatusCode.OK, https.StatusCode);
    }

    [Fact]
    public async Task Private_networks_and_listed_hosts_are_allowed_only_as_configured()
    {
        await using (var onPrem = await StartAsync(("Outbound:AllowPrivateNetworks", "true")))
        {
            var ada = onPrem.Account("ada");
            foreach (var url in new[] { "https://internal.test/hook", "https://10.0.0.5/", "https://192.168.1.1/", "https://[fd00::1]/" })
            {
                Assert.Equal(HttpStatusCode.OK, (await Put(ada, url)).StatusCode);
            }
            // Private networks do not open the host itself, link-local or the cloud metadata service.
            foreach (var url in new[] { "https://127.0.0.1/", "https://localhost/", "https://169.254.169.254/", "https://metadata.test/", "https://[fd00:ec2::254]/", "https://[fe80::1]/" })
            {
                Assert.Equal(HttpStatusCode.BadRequest, (await Put(ada, url)).StatusCode);
            }
        }

        await using var listed = await StartAsync(("Outbound:AllowedHosts:0", "internal.test"), ("Outbound:AllowedHosts:1", "10.9.0.0/16"));
        var admin = listed.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await Put(admin, "https://internal.test/hook")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Put(admin, "https://10.9.1.1/hook")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Put(admin, "https://10.0.0.5/hook")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await Put(admin, "https://[::]/hook")).StatusCode);

        static Task<HttpResponseMessage> Put(HttpClient admin, string url) =>
            admin.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { dispatch = new { kind = "webhook", url, secret = Secret } });
    }

    private static System.Text.Json.JsonValueKind JsonValueKind(System.Text.Json.JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) ? value.ValueKind : System.Text.Json.JsonValueKind.Null;
}
