using System.Text;
using System.Text.Json;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using MimeKit;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Timers;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Notifications;

/// <summary>The channels a notification goes out on: the webhook (signed), e-mail (each approver their own, with their action links).</summary>
public sealed partial class Notifier
{
    private static readonly string[] LinkedKinds = [NotificationKinds.ApprovalRequested, NotificationKinds.Reminder, NotificationKinds.Escalation];

    /// <summary>
    /// The action links of a request to decide (requested, reminder, escalation) for each recipient who may decide the
    /// approval now; none when links are off, the approval is no longer pending or moved to another version since.
    /// Made at delivery, so a retry carries links that are valid then.
    /// </summary>
    private async Task<IReadOnlyList<Approvals.Links.ApproverLinks>> LinksAsync(Notification notification, CancellationToken cancellationToken)
    {
        if (!actionLinks.Enabled || notification.ApprovalId is null || !LinkedKinds.Contains(notification.Kind) || notification.Recipients.Count == 0)
        {
            return [];
        }
        var approval = await approvals.GetApprovalAsync(notification.Tenant, notification.ApprovalId);
        if (approval is null || approval.State != ApprovalStates.Pending || (notification.Version is { } v && v != approval.Version))
        {
            return [];
        }
        var links = new List<Approvals.Links.ApproverLinks>();
        foreach (var recipient in notification.Recipients)
        {
            if (await actionLinks.ForApproverAsync(approval, recipient, cancellationToken) is { } forRecipient)
            {
                links.Add(forRecipient);
            }
        }
        return links;
    }

    /// <summary>The personal part of an approver's e-mail: their own links (nobody else's).</summary>
    private static string LinksText(Approvals.Links.ApproverLinks links) => links.SignInRequired
        ? $"""


            This request requires sign-in: decide it in the portal.
            Open in the portal: {links.Open}
            """
        : $"""


            Approve: {links.Approve}
            Reject: {links.Reject}
            Open in the portal: {links.Open}

            These links are yours alone ({links.Approver}). Opening one only shows the request; you confirm on the page. Each works once.
            """;

    /// <summary>Posts the notification; null when the receiver answered 2xx, else what went wrong.</summary>
    private async Task<string?> PostAsync(string url, string secret, Notification notification, CancellationToken cancellationToken)
    {
        var body = notification.ToJson();
        try
        {
            using var http = httpFactory.CreateClient(HttpClientName);
            http.Timeout = options.Value.Timeout;
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add("Idempotency-Key", notification.Id);
            request.Headers.Add("X-Signature", "sha256=" + Dispatch.Dispatcher.Sign(secret, body));
            request.Headers.Add("X-Notification-Kind", notification.Kind);
            using var response = await http.SendAsync(request, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return ex.Message;
        }
    }

    /// <summary>Sends the e-mail; null when the server accepted it (or there is nobody to send it to), else the error.</summary>
    /// <remarks>
    /// An approver with action links gets a message of their own carrying only their links; the tenant's team addresses
    /// and everybody else share one message without links.
    /// </remarks>
    private async Task<string?> MailAsync(SmtpSettings smtp, Notification notification, IReadOnlyList<Approvals.Links.ApproverLinks> links,
        CancellationToken cancellationToken)
    {
        var to = new List<string>(smtp.To);
        var personal = new List<(string Email, Approvals.Links.ApproverLinks Links)>();
        await using (var scope = scopes.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
            foreach (var name in notification.Recipients)
            {
                if (await users.FindByNameAsync(name) is not { Email: { Length: > 0 } email })
                {
                    continue;
                }
                if (links.FirstOrDefault(l => l.Approver == name) is { } own)
                {
                    personal.Add((email, own));
                }
                else if (!to.Contains(email, StringComparer.OrdinalIgnoreCase))
                {
                    to.Add(email);
                }
            }
        }
        if (to.Count == 0 && personal.Count == 0)
        {
            return null;
        }
        if (smtp.Security == SmtpSecurity.None && !outbound.InsecureSmtpAllowed)
        {
            return "plain SMTP (security: none) is not allowed here (Outbound:AllowInsecureSmtp): nothing sent";
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Value.Timeout);
        try
        {
            var messages = new List<MimeMessage>();
            if (to.Count > 0)
            {
                messages.Add(Message(to, notification.Message, $"{notification.Id}@reviewerportal"));
            }
            for (var i = 0; i < personal.Count; i++)
            {
                messages.Add(Message([personal[i].Email], notification.Message + LinksText(personal[i].Links), $"{notification.Id}.{i + 1}@reviewerportal"));
            }

            MimeMessage Message(IEnumerable<string> addresses, string text, string messageId)
            {
                var message = new MimeMessage { Subject = notification.Subject, Body = new TextPart("plain") { Text = text } };
                message.From.Add(MailboxAddress.Parse(smtp.From));
                foreach (var address in addresses)
                {
                    message.To.Add(MailboxAddress.Parse(address));
                }
                message.MessageId = messageId;
                message.Headers.Add("X-Idempotency-Key", notification.Id);
                message.Headers.Add("X-Notification-Kind", notification.Kind);
                return message;
            }

            // The socket is opened by the outbound guard after it checked the resolved address (so the SMTP host cannot
            // be rebound to an internal address); MailKit speaks SMTP over it, with TLS as the tenant requires and the
            // server's certificate validated for the configured host name.
            using var socket = await outbound.ConnectSocketAsync(smtp.Host, smtp.Port, timeout.Token);
            using var client = new SmtpClient { Timeout = (int)options.Value.Timeout.TotalMilliseconds };
            await client.ConnectAsync(socket, smtp.Host, smtp.Port, smtp.Security switch
            {
                SmtpSecurity.Tls => SecureSocketOptions.SslOnConnect,
                SmtpSecurity.None => SecureSocketOptions.None,
                _ => SecureSocketOptions.StartTls, // fails if the server does not offer STARTTLS: never falls back to plain
            }, timeout.Token);
            if (smtp.UserName is not null)
            {
                await client.AuthenticateAsync(smtp.UserName, smtp.Password ?? "", timeout.Token);
            }
            foreach (var message in messages)
            {
                await client.SendAsync(message, timeout.Token);
            }
            await client.DisconnectAsync(quit: true, timeout.Token);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // Refused by the outbound rules, unreachable, no STARTTLS, TLS or authentication failed, the server said no,
            // or the time budget ran out: a failed delivery like any other.
            return ex is OperationCanceledException ? $"no answer within {options.Value.Timeout.TotalSeconds:F0} s" : ex.Message;
        }
    }
}
