using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Notifications;

/// <summary>
/// SMTP requires STARTTLS unless a tenant says otherwise (security issue: SMTP through MailKit, STARTTLS required by
/// default): a server that offers no STARTTLS gets no message in plain text, a failed delivery instead; plain SMTP
/// (<c>security: none</c>) is accepted only where the operator allows it.
/// </summary>
public sealed class SmtpSecurityTests
{
    [Fact]
    public async Task By_default_a_server_without_starttls_gets_a_failed_delivery_not_a_plain_text_message()
    {
        await using var smtp = SmtpSink.Start(); // plain: its EHLO offers no STARTTLS
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });
        var ada = app.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", to = new[] { "team@example.invalid" } } },
        })).StatusCode);
        var settings = await (await ada.GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal("starttls", settings.GetProperty("notifications").GetProperty("smtp").Str("security"));

        var id = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.Empty(smtp.Messages);
        Assert.False(smtp.SawMail, "no MAIL FROM may be sent before TLS");
        var failures = (await (await ada.GetAsync("/api/v1/tenants/acme/notifications")).Json()).GetProperty("recentFailures");
        Assert.Contains(failures.EnumerateArray(), f => f.Str("channel") == "email" && f.Str("error").Contains("STARTTLS", StringComparison.Ordinal));
        Assert.True(await app.AuditCountAsync(id, "notification_failed") >= 1);
    }

    [Fact]
    public async Task A_server_offering_starttls_with_an_untrusted_certificate_gets_no_mail()
    {
        await using var smtp = SmtpSink.StartWithUntrustedTls();
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });
        var ada = app.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", to = new[] { "team@example.invalid" } } },
        })).StatusCode);

        await app.Agent("acme").SubmitPayment(7);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.Equal(1, smtp.TlsStarted); // STARTTLS was taken up, then the certificate refused
        Assert.False(smtp.SawMail);
        Assert.Empty(smtp.Messages);
        var failures = (await (await ada.GetAsync("/api/v1/tenants/acme/notifications")).Json()).GetProperty("recentFailures");
        Assert.True(failures.EnumerateArray().Any(f => f.Str("channel") == "email" && f.Str("error").Contains("certificate", StringComparison.OrdinalIgnoreCase)),
            failures.GetRawText());
    }

    [Fact]
    public async Task With_a_user_name_the_notifier_authenticates_before_sending()
    {
        await using var smtp = SmtpSink.Start(credentials: ("mailer", "smtp-password-0123"));
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new
            {
                smtp = new
                {
                    host = "127.0.0.1", port = smtp.Port, from = "portal@example.invalid", to = new[] { "team@example.invalid" },
                    security = "none", userName = "mailer", password = "smtp-password-0123",
                },
            },
        })).StatusCode);

        await app.Agent("acme").SubmitPayment(7);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        Assert.Equal("mailer", smtp.AuthenticatedAs);
        Assert.Contains(smtp.Messages, m => m.To.Contains("team@example.invalid"));
    }

    [Fact]
    public async Task Plain_smtp_is_refused_at_save_unless_the_operator_allows_it()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Outbound:AllowInsecureSmtp"] = "false" });
        var ada = app.Account("ada");

        var none = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = 25, from = "portal@example.invalid", security = "none" } },
        });
        var unknown = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = 25, from = "portal@example.invalid", security = "maybe" } },
        });
        var tls = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            notifications = new { smtp = new { host = "127.0.0.1", port = 465, from = "portal@example.invalid", security = "tls" } },
        });

        Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);
        Assert.Contains("Outbound:AllowInsecureSmtp", (await none.Json()).GetProperty("errors").GetProperty("notifications.smtp.security")[0].GetString());
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.True((await unknown.Json()).GetProperty("errors").TryGetProperty("notifications.smtp.security", out _));
        Assert.Equal(HttpStatusCode.OK, tls.StatusCode);
    }
}
