using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>
/// Outbound calls never follow a redirect: a 307 would re-send the body and its signature to an address nobody
/// configured (security pass: outbound calls follow redirects). A redirect is a failed delivery.
/// </summary>
public sealed class OutboundRedirectTests
{
    [Fact]
    public async Task A_webhook_that_redirects_gets_a_failed_delivery_and_the_other_address_gets_nothing()
    {
        await using var elsewhere = WebhookReceiver.Start();
        await using var redirecting = WebhookReceiver.Redirecting(elsewhere.Url);
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
        await using var app = await TestApp.StartAsync(clock, settings: new Dictionary<string, string?>
        {
            ["Dispatch:Enabled"] = "false",
            ["Notifications:Enabled"] = "false",
        });
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = redirecting.Url, secret = "redirect-test-secret-0123" },
            notifications = new { webhookUrl = redirecting.Url, webhookSecret = "redirect-test-secret-0123" },
        })).StatusCode);
        var id = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);

        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.NotEmpty(redirecting.Requests);
        Assert.Empty(elsewhere.Requests);
        Assert.Equal(1, await app.AuditCountAsync(id, "dispatch_failed"));
        Assert.Equal(0, await app.AuditCountAsync(id, "dispatched"));
        Assert.True(await app.AuditCountAsync(id, "notification_failed") >= 1);
    }
}
