using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Secrets;

namespace ReviewerPortal.Features.Migration;

/// <summary>
/// A tenant's settings in the shape of <c>PUT /api/v1/tenants/{tenant}/settings</c>, so an import applies them
/// through the same validation (durations, reviewer accounts, outbound rules) and audit as an admin's change.
/// Every field is set (<c>off</c>, <c>{}</c>, <c>none</c> where nothing is configured), so the destination ends with
/// exactly the source's settings. Secrets are Data Protection ciphertext bound to the source's key ring: they are
/// written decrypted only when <paramref name="reveal"/> is given, and left out (null) otherwise.
/// </summary>
public static class SettingsLines
{
    public static TenantSettingsRequest ToRequest(TenantSettings s, TenantSecrets? reveal)
    {
        var w = s.Workflow;
        return new TenantSettingsRequest
        {
            DisplayName = s.DisplayName ?? "",
            ApprovalTtl = DurationText.Format(s.ApprovalTtl),
            Approvers = s.Approvers,
            Dispatch = s.Dispatch switch
            {
                null => new DispatchRequest { Kind = "none" },
                { Kind: DispatchSink.Webhook } d => new DispatchRequest { Kind = d.Kind, Url = d.Target, Secret = reveal?.Reveal(s.Tenant, d.Secret) },
                var d => new DispatchRequest { Kind = d.Kind, Key = d.Target },
            },
            Sla = w.Sla is { } sla ? DurationText.Format(sla) : "off",
            ReminderInterval = w.ReminderInterval is { } every ? DurationText.Format(every) : "off",
            MaxReminders = w.MaxReminders,
            Escalation = [.. w.Escalation.Select(l => new EscalationLevelRequest { Approvers = l.Approvers, Sla = DurationText.Format(l.Sla) })],
            TimeoutOutcome = w.TimeoutOutcome,
            Quorum = w.Quorum is { } q ? new QuorumRequest { Required = q.Required, Of = q.Of, RejectsToReject = q.RejectsToReject } : new QuorumRequest(),
            RequesterMayApprove = w.RequesterMayApprove,
            ResubmissionWindow = DurationText.Format(w.ResubmissionWindow),
            MaxResubmissions = w.MaxResubmissions,
            StandingApprovalMax = DurationText.Format(w.StandingApprovalMax),
            Notifications = w.Notifications is { } n
                ? new NotificationsRequest
                {
                    WebhookUrl = n.WebhookUrl,
                    WebhookSecret = reveal?.Reveal(s.Tenant, n.WebhookSecret),
                    Smtp = n.Smtp is { } m
                        ? new SmtpRequest
                        {
                            Host = m.Host, Port = m.Port, From = m.From, To = m.To, Security = m.Security, UserName = m.UserName,
                            Password = reveal?.Reveal(s.Tenant, m.Password),
                        }
                        : null,
                }
                : new NotificationsRequest(),
            RedactFields = s.Redaction.Fields,
            RedactPatterns = [.. s.Redaction.Patterns.Select(p => new RedactPatternRequest { Name = p.Name, Regex = p.Regex })],
            Slack = s.Slack is { } k
                ? new Slack.SlackRequest
                {
                    WebhookUrl = reveal?.Reveal(s.Tenant, k.WebhookUrl), SigningSecret = reveal?.Reveal(s.Tenant, k.SigningSecret), Users = k.Users,
                }
                : new Slack.SlackRequest(),
        };
    }

    /// <summary>The secrets the tenant has set, by the name of their field in the settings.</summary>
    public static IReadOnlyList<string> SecretFields(TenantSettings s) =>
    [
        .. s.Dispatch?.Secret is { Length: > 0 } ? ["dispatch.secret"] : Array.Empty<string>(),
        .. s.Workflow.Notifications?.WebhookSecret is { Length: > 0 } ? ["notifications.webhookSecret"] : Array.Empty<string>(),
        .. s.Workflow.Notifications?.Smtp?.Password is { Length: > 0 } ? ["notifications.smtp.password"] : Array.Empty<string>(),
        .. s.Slack?.WebhookUrl is { Length: > 0 } ? ["slack.webhookUrl"] : Array.Empty<string>(),
        .. s.Slack?.SigningSecret is { Length: > 0 } ? ["slack.signingSecret"] : Array.Empty<string>(),
    ];

    /// <summary>The request without its secrets (to compare what is configured, whatever the key ring).</summary>
    public static TenantSettingsRequest WithoutSecrets(TenantSettingsRequest r) => r with
    {
        Dispatch = r.Dispatch is { } d ? d with { Secret = null } : null,
        Notifications = r.Notifications is { } n
            ? n with { WebhookSecret = null, Smtp = n.Smtp is { } m ? m with { Password = null } : null }
            : null,
        Slack = r.Slack is { } k ? k with { WebhookUrl = null, SigningSecret = null } : null,
    };

    /// <summary>The secrets this request carries.</summary>
    public static bool HasSecrets(TenantSettingsRequest r) =>
        r.Dispatch?.Secret is not null || r.Notifications?.WebhookSecret is not null || r.Notifications?.Smtp?.Password is not null
        || r.Slack?.WebhookUrl is not null || r.Slack?.SigningSecret is not null;
}
