using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// Issue 16, Slack, in Debian's chromium: the admin connects the tenant's Slack app on the admin page (the secrets never
/// come back to the page), a request is posted to the (local, fake) Slack, and a signed Approve click decides it.
/// </summary>
public sealed class SlackBrowserTests : PortalBrowserTest
{
    private const string SigningSecret = "browser-signing-secret-Pw83Zt";

    protected override Task<TestApp> StartAppAsync() => TestApp.StartAsync(kestrel: true,
        settings: BrowserSession.AppSettings(new Dictionary<string, string?> { ["Slack:ResponseUrlHosts:0"] = "127.0.0.1" }));

    [SkippableFact]
    public async Task The_admin_connects_slack_and_a_click_in_slack_approves_the_request()
    {
        var app = App;
        using var slack = new HttpListener();
        var hook = $"http://127.0.0.1:{TestServers.LowFreePort()}/services/T0ACME/B0BROWSER/";
        slack.Prefixes.Add(hook);
        slack.Start();
        var received = new List<string>();
        _ = Task.Run(async () =>
        {
            while (slack.IsListening)
            {
                try
                {
                    var context = await slack.GetContextAsync();
                    using (var reader = new StreamReader(context.Request.InputStream))
                    {
                        var body = await reader.ReadToEndAsync();
                        lock (received)
                        {
                            received.Add(body);
                        }
                    }
                    context.Response.StatusCode = 200;
                    context.Response.Close();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
            }
        });

        var admin = await SignInAsync("ada");
        await admin.GotoAsync($"{app.BaseUrl}/admin/acme");
        await BrowserSession.Interactive(admin);
        await admin.GetByTestId("slack-webhook").FillAsync(hook + "incoming");
        await admin.GetByTestId("slack-secret").FillAsync(SigningSecret);
        await admin.GetByTestId("slack-users").FillAsync("U0ALICE = alice");
        await admin.GetByTestId("save-slack").ClickAsync();
        await Expect(admin.GetByTestId("slack-saved")).ToBeVisibleAsync();
        await admin.ReloadAsync();
        await BrowserSession.Interactive(admin);
        await Expect(admin.GetByTestId("slack-settings")).ToContainTextAsync("Signing secret (set; leave empty to keep)");
        await Expect(admin.GetByTestId("slack-settings")).ToContainTextAsync("/api/v1/integrations/slack/interactions");
        var content = await admin.ContentAsync();
        Assert.DoesNotContain(SigningSecret, content);
        Assert.DoesNotContain("B0BROWSER", content);

        var submitted = await app.Agent("acme").SubmitPayment(4242);
        var id = submitted.Str("approvalId");
        string? message = null;
        for (var i = 0; i < 300 && message is null; i++)
        {
            lock (received)
            {
                message = received.FirstOrDefault(r => r.Contains(id, StringComparison.Ordinal));
            }
            if (message is null)
            {
                await Task.Delay(100); // the notifier delivers in the background
            }
        }
        Assert.NotNull(message);
        var value = JsonDocument.Parse(message!).RootElement.GetProperty("blocks").EnumerateArray()
            .Where(b => b.GetProperty("type").GetString() == "actions")
            .SelectMany(b => b.GetProperty("elements").EnumerateArray())
            .Single(e => e.GetProperty("action_id").GetString() == "approve").GetProperty("value").GetString()!;

        var payload = JsonSerializer.Serialize(new
        {
            type = "block_actions",
            user = new { id = "U0ALICE" },
            response_url = hook + "response",
            actions = new[] { new { action_id = "approve", value } },
        });
        var body = "payload=" + Uri.EscapeDataString(payload);
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var click = new HttpRequestMessage(HttpMethod.Post, "/api/v1/integrations/slack/interactions")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/x-www-form-urlencoded"),
        };
        click.Headers.Add("X-Slack-Request-Timestamp", timestamp);
        click.Headers.Add("X-Slack-Signature", "v0=" + Convert.ToHexStringLower(
            HMACSHA256.HashData(Encoding.UTF8.GetBytes(SigningSecret), Encoding.UTF8.GetBytes($"v0:{timestamp}:{body}"))));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().SendAsync(click)).StatusCode);

        var alice = await SignInAsync("alice");
        await alice.GotoAsync($"{app.BaseUrl}/approvals/{id}");
        await BrowserSession.Interactive(alice);
        await Expect(alice.GetByTestId("approval-state")).ToContainTextAsync("approved");
        lock (received)
        {
            Assert.Contains(received, r => r.Contains("Approved by alice", StringComparison.Ordinal));
        }
        var folder = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        await admin.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, "slack-admin.png"), FullPage = true });
    }
}
