using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using MimeKit;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Notifications;

/// <summary>Requests to decide carry each eligible approver's own action links, by webhook and by e-mail; nothing else does.</summary>
public sealed class ActionLinkNotificationTests : IAsyncLifetime
{
    private const string BaseUrl = ActionLinkTests.BaseUrl;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?>
    {
        ["Notifications:Enabled"] = "false",
        ["Portal:PublicBaseUrl"] = BaseUrl,
    });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static string Text(SmtpSink.Message message) =>
        MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(message.Data))).TextBody ?? "";

    [Fact]
    public async Task Each_approver_gets_only_their_own_links_and_the_webhook_carries_every_approvers_links()
    {
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        await Workflow.SetAsync(_app, new
        {
            notifications = new
            {
                webhookUrl = webhook.Url,
                webhookSecret = "notification-secret-0123456789",
                smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", security = "none", to = new[] { "finance-team@example.invalid" } },
            },
        });
        var submitted = await _app.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-8", amount = 8 }, requestedBy = "carol",
        });
        var id = (await submitted.Json()).Str("approvalId");
        var notifier = _app.Services.GetRequiredService<Notifier>();

        await notifier.RunDueAsync(CancellationToken.None);

        var body = JsonDocument.Parse(Assert.Single(webhook.Requests).Body).RootElement;
        var links = body.GetProperty("links").EnumerateArray().ToDictionary(l => l.Str("approver"));
        Assert.Equal(["alice", "bob"], links.Keys.Order());
        foreach (var link in links.Values)
        {
            Assert.StartsWith(BaseUrl + "a/", link.Str("approve"));
            Assert.StartsWith(BaseUrl + "a/", link.Str("reject"));
            Assert.Equal(BaseUrl + "approvals/" + id, link.Str("open"));
        }

        Assert.Equal(3, smtp.Messages.Count);
        var team = Assert.Single(smtp.Messages, m => m.To.Contains("finance-team@example.invalid"));
        Assert.DoesNotContain("/a/", Text(team));
        Assert.DoesNotContain("alice@example.invalid", team.To);
        foreach (var (name, other) in new[] { ("alice", "bob"), ("bob", "alice") })
        {
            var own = Assert.Single(smtp.Messages, m => m.To.Contains($"{name}@example.invalid"));
            Assert.Single(own.To);
            var text = Text(own);
            Assert.Contains(links[name].Str("approve"), text);
            Assert.Contains(links[name].Str("reject"), text);
            Assert.DoesNotContain(links[other].Str("approve"), text);
            Assert.DoesNotContain(links[other].Str("reject"), text);
        }

        // The mailed link opens the request; the decision then tells carol (the requester) without any link.
        using var browser = _app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(new Uri(links["alice"].Str("approve")).PathAndQuery)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(id)).StatusCode);
        await notifier.RunDueAsync(CancellationToken.None);
        var decision = JsonDocument.Parse(webhook.Requests[^1].Body).RootElement;
        Assert.Equal("decision", decision.Str("kind"));
        Assert.False(decision.TryGetProperty("links", out _));
        var toCarol = Assert.Single(smtp.Messages, m => m.To.Contains("carol@example.invalid"));
        Assert.DoesNotContain("/a/", Text(toCarol));
    }

    [Fact]
    public async Task Without_a_public_base_url_notifications_carry_no_links()
    {
        await using var app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });
        await using var webhook = WebhookReceiver.Start();
        await Workflow.SetAsync(app, new { notifications = new { webhookUrl = webhook.Url, webhookSecret = "notification-secret-0123456789" } });
        await app.Agent("acme").SubmitPayment();

        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.False(JsonDocument.Parse(Assert.Single(webhook.Requests).Body).RootElement.TryGetProperty("links", out _));
    }
}
