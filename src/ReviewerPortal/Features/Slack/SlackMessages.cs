using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Infrastructure.Secrets;

namespace ReviewerPortal.Features.Slack;

/// <summary>
/// The Block Kit messages: a request (what, who asked, the rule, the expiry, the payload as a person may read it, and
/// Approve / Reject / Open), posted to the tenant's incoming webhook by the <see cref="Notifier"/> (so it is durable and
/// retried like the other channels), and the same message with its outcome instead of the buttons after a click.
/// Each decision button's value is <c>{tenant}|{approvalId}|{jobHash}</c>: the click names the tenant whose signing
/// secret must verify it, and the job hash the reviewer saw (a job that changed since is refused).
/// </summary>
public sealed class SlackMessages(
    IApprovalStore store,
    TenantSecrets secrets,
    Redactor redactor,
    IHttpClientFactory httpFactory,
    IOptions<SlackOptions> options,
    IOptionsMonitor<OutboundOptions> outbound,
    IOptionsMonitor<Approvals.Links.PortalOptions> portal,
    ILogger<SlackMessages> logger)
{
    public const string HttpClientName = "slack";
    public const string ApproveAction = "approve";
    public const string RejectAction = "reject";

    /// <summary>The link button: Slack reports its click too (acknowledged, nothing decided).</summary>
    public const string OpenAction = "open";
    private const int MaxPayloadText = 1500;

    /// <summary>The notifications Slack gets: a request asks for a decision (first, reminded, escalated); the rest do not.</summary>
    public static bool Posts(string kind) =>
        kind is NotificationKinds.ApprovalRequested or NotificationKinds.Reminder or NotificationKinds.Escalation;

    public static string ActionValue(Approval a) => $"{a.Tenant}|{a.Id}|{a.JobHash}";

    /// <summary>The portal's address for links (<c>Portal:PublicBaseUrl</c>, validated by <see cref="Approvals.Links.PortalOptions"/>); null: no Open button.</summary>
    private Uri? PortalBase => portal.CurrentValue.BaseUri;

    /// <summary>Posts the request to the tenant's incoming webhook; null when Slack took it (or there is nothing left to ask), else why not.</summary>
    public async Task<string?> PostRequestAsync(TenantSettings settings, Notification notification, CancellationToken cancellationToken)
    {
        if (notification.ApprovalId is not { } id || await store.GetApprovalAsync(settings.Tenant, id) is not { } approval
            || approval.State != ApprovalStates.Pending)
        {
            return null; // decided or gone meanwhile: no buttons to offer
        }
        var url = secrets.Reveal(settings.Tenant, settings.Slack?.WebhookUrl);
        if (url is null)
        {
            return null;
        }
        var message = Request(approval, settings, notification);
        return await PostAsync(url, message, cancellationToken);
    }

    /// <summary>The request message with its buttons.</summary>
    public JsonObject Request(Approval a, TenantSettings settings, Notification? notification = null)
    {
        var heading = notification?.Kind switch
        {
            NotificationKinds.Reminder => "Reminder: approval waiting",
            NotificationKinds.Escalation => $"Escalated to you (level {notification.EscalationLevel})",
            _ => "Approval requested",
        };
        var blocks = Summary(a, settings, heading);
        var value = ActionValue(a);
        var buttons = new JsonArray
        {
            Button("Approve", ApproveAction, value, "primary"),
            Button("Reject", RejectAction, value, "danger"),
        };
        if (PortalBase is { } portalBase)
        {
            buttons.Add(new JsonObject
            {
                ["type"] = "button",
                ["action_id"] = OpenAction,
                ["text"] = PlainText("Open in portal"),
                ["value"] = value,
                ["url"] = new Uri(portalBase, "approvals/" + Uri.EscapeDataString(a.Id)).ToString(),
            });
        }
        blocks.Add(new JsonObject { ["type"] = "actions", ["block_id"] = "decide", ["elements"] = buttons });
        return new JsonObject { ["text"] = $"{heading}: {a.Job.Topic} in {a.Job.Env}", ["blocks"] = blocks };
    }

    /// <summary>The message as it ends: the same summary, the outcome instead of the buttons (replaces the original).</summary>
    public JsonObject Outcome(Approval a, TenantSettings settings, string outcome)
    {
        var blocks = Summary(a, settings, $"{a.Job.Topic} in {a.Job.Env}");
        blocks.Add(new JsonObject { ["type"] = "section", ["text"] = Markdown(Escape(outcome)) });
        return new JsonObject { ["replace_original"] = true, ["text"] = outcome, ["blocks"] = blocks };
    }

    /// <summary>An answer only the person who clicked sees; the message stays as it is.</summary>
    public static JsonObject Ephemeral(string text) =>
        new() { ["response_type"] = "ephemeral", ["replace_original"] = false, ["text"] = text };

    /// <summary>
    /// Answers a click at its <c>response_url</c>, which must be on one of <see cref="SlackOptions.ResponseUrlHosts"/>
    /// (and pass the outbound rules): a signed click still never makes the app call an address Slack would not give.
    /// </summary>
    public async Task RespondAsync(string? responseUrl, JsonObject body, CancellationToken cancellationToken)
    {
        if (OutboundUrl.Parse(responseUrl) is not { } url || url.Scheme == Uri.UriSchemeHttp && !outbound.CurrentValue.AllowHttp
            || !options.Value.ResponseUrlHosts.Contains(url.IdnHost, StringComparer.OrdinalIgnoreCase))
        {
            logger.LogWarning("A Slack click's response_url is not on Slack:ResponseUrlHosts; the message is not updated");
            return;
        }
        if (await PostAsync(url.ToString(), body, cancellationToken) is { } error)
        {
            logger.LogWarning("Updating the Slack message failed: {Error}", error);
        }
    }

    private async Task<string?> PostAsync(string url, JsonObject message, CancellationToken cancellationToken)
    {
        try
        {
            using var http = httpFactory.CreateClient(HttpClientName);
            http.Timeout = options.Value.Timeout;
            using var content = new StringContent(message.ToJsonString(), Encoding.UTF8, "application/json");
            using var response = await http.PostAsync(url, content, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or OutboundRefusedException)
        {
            // The exception's text names the host at most, never the webhook's path (the credential).
            return ex is TaskCanceledException ? $"no answer within {options.Value.Timeout.TotalSeconds:F0} s" : ex.Message;
        }
    }

    private JsonArray Summary(Approval a, TenantSettings settings, string heading)
    {
        var requested = a.RequestedBy is { Length: > 0 } by ? $"{a.Submitter} for {by}" : a.Submitter;
        var expires = a.ExpiresAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var fields = new JsonArray
        {
            Markdown($"*Topic*\n{Escape(a.Job.Topic)}"),
            Markdown($"*Env*\n{Escape(a.Job.Env)}"),
            Markdown($"*Requested by*\n{Escape(requested)}"),
            Markdown($"*Risk / rule*\n{Escape(a.Job.Priority)} · {Escape(a.RuleId ?? "(default)")}"),
            Markdown($"*Expires*\n<!date^{expires}^{{date_short_pretty}} {{time}}|{a.ExpiresAt:u}>"),
            Markdown($"*Approval*\n{Escape(a.Id)}{(a.Version > 1 ? $" (v{a.Version})" : "")}"),
        };
        return
        [
            new JsonObject { ["type"] = "header", ["text"] = PlainText(Truncate(heading, 150)) },
            new JsonObject { ["type"] = "section", ["fields"] = fields },
            new JsonObject { ["type"] = "section", ["text"] = Markdown($"*Payload*\n```{PayloadText(a, settings)}```") },
        ];
    }

    /// <summary>The payload as a person may read it: the tenant's masked fields masked, then scanned for secrets, then cut short.</summary>
    private string PayloadText(Approval a, TenantSettings settings)
    {
        var masked = PayloadMasking.Mask(a.Job.Payload, settings.Redaction.Fields).GetRawText();
        return Truncate(Escape(redactor.Scan(masked, settings.Redaction).Text), MaxPayloadText); // a section's text holds 3,000
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    /// <summary>Slack's mrkdwn control characters (and the backticks that would end the code block).</summary>
    private static string Escape(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal).Replace("`", "'", StringComparison.Ordinal);

    private static JsonObject Button(string text, string actionId, string value, string style) =>
        new() { ["type"] = "button", ["action_id"] = actionId, ["text"] = PlainText(text), ["value"] = value, ["style"] = style };

    private static JsonObject PlainText(string text) => new() { ["type"] = "plain_text", ["text"] = text, ["emoji"] = false };

    private static JsonObject Markdown(string text) => new() { ["type"] = "mrkdwn", ["text"] = text };
}
