using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Notifications;

/// <summary>Webhook and e-mail notifications to a local receiver and a local SMTP sink, with a fake clock for the back-off.</summary>
public sealed class NotificationTests : IAsyncLifetime
{
    private const string Secret = "notification-secret-0123456789";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    // The test drives delivery itself (the background loop would race it for each notification's lock).
    public async Task InitializeAsync() =>
        _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private Notifier Notifier => _app.Services.GetRequiredService<Notifier>();

    private Task ConfigureAsync(WebhookReceiver webhook, SmtpSink smtp, object? extra = null) =>
        Workflow.SetAsync(_app, new
        {
            sla = "02:00:00",
            reminderInterval = "01:00:00",
            maxReminders = 1,
            notifications = new
            {
                webhookUrl = webhook.Url,
                webhookSecret = Secret,
                smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", security = "none", to = new[] { "finance-team@example.invalid" } },
            },
        });

    [Fact]
    public async Task Requested_reminder_and_timeout_reach_the_webhook_signed_and_the_approvers_by_mail()
    {
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        await ConfigureAsync(webhook, smtp);
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var timers = _app.Services.GetRequiredService<ExpiryService>();

        await Notifier.RunDueAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromHours(1));
        await timers.RunDueAsync(CancellationToken.None);
        await Notifier.RunDueAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromHours(1));
        await timers.RunDueAsync(CancellationToken.None);
        await Notifier.RunDueAsync(CancellationToken.None);

        var kinds = webhook.Requests.Select(r => JsonDocument.Parse(r.Body).RootElement.Str("kind")).ToList();
        Assert.Equal(["approval_requested", "reminder", "timeout"], kinds);
        foreach (var request in webhook.Requests)
        {
            var body = JsonDocument.Parse(request.Body).RootElement;
            Assert.Equal("sha256=" + Dispatcher.Sign(Secret, request.Body), request.Signature);
            Assert.Equal(body.Str("id"), request.IdempotencyKey);
            Assert.Equal(id, body.Str("approvalId"));
            Assert.Equal("acme", body.Str("tenant"));
        }
        Assert.Equal(3, smtp.Messages.Count);
        var requested = smtp.Messages[0];
        Assert.Contains("alice@example.invalid", requested.To);
        Assert.Contains("bob@example.invalid", requested.To);
        Assert.Contains("finance-team@example.invalid", requested.To);
        Assert.Contains(webhook.Requests[0].IdempotencyKey!, requested.Header("Message-ID"));
        Assert.Equal(3, await _app.AuditCountAsync(id, "notified"));
    }

    [Fact]
    public async Task A_failing_webhook_is_retried_with_back_off_without_mailing_twice_and_never_blocks_the_approval()
    {
        await using var webhook = WebhookReceiver.Start(failFirst: 2);
        await using var smtp = SmtpSink.Start();
        await ConfigureAsync(webhook, smtp);
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        await Notifier.RunDueAsync(CancellationToken.None);
        Assert.Single(webhook.Requests);
        Assert.Single(smtp.Messages);
        Assert.Equal(1, await _app.AuditCountAsync(id, "notification_failed"));
        var status = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/notifications")).Json();
        Assert.Equal(1, status.GetProperty("pending").GetInt64());
        var failure = status.GetProperty("recentFailures")[0];
        Assert.Equal("webhook", failure.Str("channel"));
        Assert.Equal("HTTP 503", failure.Str("error"));

        await Notifier.RunDueAsync(CancellationToken.None); // not due yet: nothing is sent
        Assert.Single(webhook.Requests);
        _clock.Advance(TimeSpan.FromSeconds(2));
        await Notifier.RunDueAsync(CancellationToken.None);
        Assert.Equal(2, webhook.Requests.Count);

        // The decision goes through while the notification still waits for its retry.
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(id)).StatusCode);
        _clock.Advance(TimeSpan.FromSeconds(4));
        await Notifier.RunDueAsync(CancellationToken.None);

        var requested = webhook.Requests.Where(r => r.Body.Contains("\"approval_requested\"")).ToList();
        Assert.Equal(3, requested.Count);
        Assert.Single(requested.Select(r => r.IdempotencyKey).Distinct());
        Assert.Single(smtp.Messages, m => m.Header("X-Notification-Kind") == "approval_requested");
        Assert.Equal(2, await _app.AuditCountAsync(id, "notification_failed"));
        Assert.Equal("approved", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
    }

    [Fact]
    public async Task A_notification_that_never_gets_through_is_given_up_after_the_maximum_and_recorded()
    {
        await using var smtp = SmtpSink.Start(refuseFirst: 100);
        await Workflow.SetAsync(_app, new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", security = "none" } },
        });
        var id = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");

        for (var i = 0; i < 12; i++)
        {
            await Notifier.RunDueAsync(CancellationToken.None);
            _clock.Advance(TimeSpan.FromMinutes(15));
        }

        Assert.Equal(7, await _app.AuditCountAsync(id, "notification_failed"));
        Assert.Equal(1, await _app.AuditCountAsync(id, "notification_abandoned"));
        var status = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/notifications")).Json();
        Assert.Equal(0, status.GetProperty("pending").GetInt64());
        Assert.True(status.GetProperty("recentFailures")[0].GetProperty("gaveUp").GetBoolean());
        Assert.Equal("pending", (await Workflow.GetApprovalAsync(_app, id)).Str("state"));
    }

    [Fact]
    public async Task Settings_show_secrets_as_set_and_keep_them_when_left_out()
    {
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        await ConfigureAsync(webhook, smtp);

        var shown = await (await _app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal("(set)", shown.GetProperty("notifications").Str("webhookSecret"));
        var put = await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { notifications = new { webhookUrl = webhook.Url } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);

        await _app.Agent("acme").SubmitPayment();
        await Notifier.RunDueAsync(CancellationToken.None);
        Assert.Equal("sha256=" + Dispatcher.Sign(Secret, webhook.Requests[0].Body), webhook.Requests[0].Signature);
    }

    [Fact]
    public async Task Two_instances_delivering_the_same_outbox_notify_each_receiver_once()
    {
        await using var webhook = WebhookReceiver.Start();
        await using var smtp = SmtpSink.Start();
        var data = TestServers.NewTempDirectory("two-notify");
        var prefix = $"tn{Guid.NewGuid():N}:";
        var quiet = new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" };
        await using var a = await TestApp.StartAsync(_clock, dataPath: data, keyPrefix: prefix, settings: quiet);
        await using var b = await TestApp.StartAsync(_clock, dataPath: data, keyPrefix: prefix, settings: quiet);
        await Workflow.SetAsync(a, new
        {
            notifications = new
            {
                webhookUrl = webhook.Url,
                webhookSecret = Secret,
                smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", security = "none" },
            },
        });
        for (var i = 0; i < 20; i++)
        {
            await (i % 2 == 0 ? a : b).Agent("acme").SubmitPayment(i + 1);
        }

        var notifiers = new[] { a.Services.GetRequiredService<Notifier>(), b.Services.GetRequiredService<Notifier>() };
        await Task.WhenAll(notifiers.Concat(notifiers).Select(n => n.RunDueAsync(CancellationToken.None)));
        await Task.WhenAll(notifiers.Select(n => n.RunDueAsync(CancellationToken.None)));

        Assert.Equal(20, webhook.Requests.Count);
        Assert.Equal(20, webhook.Requests.Select(r => r.IdempotencyKey).Distinct().Count());
        Assert.Equal(20, smtp.Messages.Count);
        Assert.Equal(20, await a.AuditCountAsync(null, "notified"));
    }
}
