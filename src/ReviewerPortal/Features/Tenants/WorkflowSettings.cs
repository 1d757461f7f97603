using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Features.Tenants;

/// <summary>
/// What happens to a tenant's approvals over time and between people: SLA, reminders, the escalation ladder, the
/// timeout outcome, quorum, separation of duties, resubmission after "changes requested", and notification channels.
/// </summary>
public sealed record WorkflowSettings
{
    public static readonly TimeSpan MinDuration = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan MaxDuration = TimeSpan.FromDays(365);
    public static readonly TimeSpan DefaultResubmissionWindow = TimeSpan.FromDays(7);

    /// <summary>Time to the first decision; null: no SLA (no reminders, no escalation; the TTL still applies).</summary>
    public TimeSpan? Sla { get; init; }

    /// <summary>Reminders to the current approvers at this interval, while the SLA of the level runs; null: none.</summary>
    public TimeSpan? ReminderInterval { get; init; }

    /// <summary>At most this many reminders per escalation level.</summary>
    public int MaxReminders { get; init; } = 3;

    /// <summary>After the SLA, each level in turn is notified and may decide too, for its own SLA.</summary>
    public IReadOnlyList<EscalationLevel> Escalation { get; init; } = [];

    /// <summary><c>reject</c> (default), <c>approve</c> or <c>escalate</c> when every level ran out; a policy rule's <c>on_timeout</c> wins.</summary>
    public string TimeoutOutcome { get; init; } = TimeoutOutcomes.Reject;

    /// <summary>M distinct eligible approvers of N; null: the first approval decides.</summary>
    public QuorumSettings? Quorum { get; init; }

    /// <summary>Whether the identity that submitted (or that the agent acted for) may approve. Never, by default.</summary>
    public bool RequesterMayApprove { get; init; }

    public TimeSpan ResubmissionWindow { get; init; } = DefaultResubmissionWindow;

    public int MaxResubmissions { get; init; } = 3;

    public NotificationSettings? Notifications { get; init; }

    /// <summary>The longest standing approval ("approve always") an approver may add: 24 hours by default, at most 24 hours.</summary>
    public TimeSpan StandingApprovalMax { get; init; } = MaxStandingApproval;

    public static readonly TimeSpan MaxStandingApproval = TimeSpan.FromHours(24);
    public static readonly TimeSpan MinStandingApproval = TimeSpan.FromMinutes(1);

    /// <summary>The SLA of a level: 0 is the tenant's approvers, 1.. the escalation levels.</summary>
    public TimeSpan? SlaOfLevel(int level) =>
        level == 0 ? Sla : level - 1 < Escalation.Count ? Escalation[level - 1].Sla : null;
}

public sealed record EscalationLevel(IReadOnlyList<string> Approvers, TimeSpan Sla);

/// <summary><see cref="Required"/> distinct approvals of <see cref="Of"/> eligible approvers; <see cref="RejectsToReject"/> rejections end it.</summary>
public sealed record QuorumSettings(int Required, int Of, int RejectsToReject = 1);

public sealed record NotificationSettings
{
    public string? WebhookUrl { get; init; }
    public string? WebhookSecret { get; init; }
    public SmtpSettings? Smtp { get; init; }

    public bool Any => WebhookUrl is not null || Smtp is not null;
}

public sealed record SmtpSettings
{
    public required string Host { get; init; }
    public int Port { get; init; } = 25;
    public required string From { get; init; }

    /// <summary>Addresses that receive every notification (a team inbox), besides the e-mail of each person notified.</summary>
    public IReadOnlyList<string> To { get; init; } = [];

    /// <summary>Kept for settings stored before <see cref="Security"/>; true unless <see cref="Security"/> is <c>none</c>.</summary>
    public bool EnableSsl { get; init; }

    /// <summary>How the connection is protected: <see cref="SmtpSecurity.StartTls"/> (required, the default), <see cref="SmtpSecurity.Tls"/> or <see cref="SmtpSecurity.None"/>.</summary>
    public string Security { get; init; } = SmtpSecurity.StartTls;
    public string? UserName { get; init; }
    public string? Password { get; init; }
}

// ------------------------------------------------------------------- the API's request shapes

public sealed record EscalationLevelRequest
{
    public IReadOnlyList<string>? Approvers { get; init; }
    public string? Sla { get; init; }
}

public sealed record QuorumRequest
{
    public int? Required { get; init; }
    public int? Of { get; init; }
    public int? RejectsToReject { get; init; }
}

public sealed record NotificationsRequest
{
    public string? WebhookUrl { get; init; }
    public string? WebhookSecret { get; init; }
    public SmtpRequest? Smtp { get; init; }
}

public sealed record SmtpRequest
{
    public string? Host { get; init; }
    public int? Port { get; init; }
    public string? From { get; init; }
    public IReadOnlyList<string>? To { get; init; }

    /// <summary><c>starttls</c> (default), <c>tls</c> or <c>none</c>; left out: what was set before.</summary>
    public string? Security { get; init; }

    /// <summary>Older form: <c>false</c> means <c>security: none</c>, <c>true</c> <c>starttls</c>; <c>security</c> wins.</summary>
    public bool? EnableSsl { get; init; }
    public string? UserName { get; init; }
    public string? Password { get; init; }
}

/// <summary>Turns the request's workflow fields into settings, naming every field at fault.</summary>
public static class WorkflowSettingsValidator
{
    public static WorkflowSettings Apply(WorkflowSettings current, TenantSettingsRequest r, IReadOnlyList<string> approvers, Dictionary<string, string[]> errors)
    {
        var w = current;
        if (r.Sla is not null)
        {
            w = w with { Sla = OptionalDuration("sla", r.Sla, errors, w.Sla) };
        }
        if (r.ReminderInterval is not null)
        {
            w = w with { ReminderInterval = OptionalDuration("reminderInterval", r.ReminderInterval, errors, w.ReminderInterval) };
        }
        if (r.MaxReminders is { } max)
        {
            if (max is < 0 or > 100)
            {
                errors["maxReminders"] = ["From 0 to 100."];
            }
            else
            {
                w = w with { MaxReminders = max };
            }
        }
        if (r.Escalation is not null)
        {
            var levels = new List<EscalationLevel>();
            if (r.Escalation.Count > 10)
            {
                errors["escalation"] = ["At most 10 levels."];
            }
            for (var i = 0; i < r.Escalation.Count && i < 10; i++)
            {
                var level = r.Escalation[i];
                var names = level.Approvers ?? [];
                if (names.Count is 0 or > 200 || names.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > 256 || a.Contains(',')))
                {
                    errors[$"escalation[{i}].approvers"] = ["1 to 200 user names, none empty or containing a comma."];
                }
                TimeSpan sla = default;
                if (level.Sla is null)
                {
                    errors[$"escalation[{i}].sla"] = ["Required: how long this level has to decide."];
                }
                else if (!TryDuration(level.Sla, out sla))
                {
                    errors[$"escalation[{i}].sla"] = [DurationProblem(level.Sla)];
                }
                levels.Add(new EscalationLevel([.. names.Select(n => n.Trim()).Distinct(StringComparer.Ordinal)], sla));
            }
            w = w with { Escalation = levels };
        }
        if (r.TimeoutOutcome is not null)
        {
            if (!TimeoutOutcomes.IsKnown(r.TimeoutOutcome))
            {
                errors["timeoutOutcome"] = ["One of reject, approve, escalate."];
            }
            else
            {
                w = w with { TimeoutOutcome = r.TimeoutOutcome };
            }
        }
        if (r.Quorum is { } q)
        {
            if (q.Required is null && q.Of is null)
            {
                w = w with { Quorum = null }; // {} turns quorum off
            }
            else if (q.Required is not { } required || required < 1)
            {
                errors["quorum.required"] = ["At least 1."];
            }
            else if (q.Of is not { } of || of < required)
            {
                errors["quorum.of"] = ["At least quorum.required."];
            }
            else if (of > approvers.Count)
            {
                errors["quorum.of"] = [$"At most the number of approvers ({approvers.Count})."];
            }
            else if (q.RejectsToReject is < 1 || q.RejectsToReject > of)
            {
                errors["quorum.rejectsToReject"] = ["From 1 to quorum.of."];
            }
            else
            {
                w = w with { Quorum = new QuorumSettings(required, of, q.RejectsToReject ?? 1) };
            }
        }
        if (r.RequesterMayApprove is { } may)
        {
            w = w with { RequesterMayApprove = may };
        }
        if (r.ResubmissionWindow is not null)
        {
            if (!TryDuration(r.ResubmissionWindow, out var window))
            {
                errors["resubmissionWindow"] = [DurationProblem(r.ResubmissionWindow)];
            }
            else
            {
                w = w with { ResubmissionWindow = window };
            }
        }
        if (r.MaxResubmissions is { } resubmissions)
        {
            if (resubmissions is < 0 or > 100)
            {
                errors["maxResubmissions"] = ["From 0 to 100."];
            }
            else
            {
                w = w with { MaxResubmissions = resubmissions };
            }
        }
        if (r.StandingApprovalMax is not null)
        {
            if (!DurationText.TryParse(r.StandingApprovalMax, out var cap)
                || cap < WorkflowSettings.MinStandingApproval || cap > WorkflowSettings.MaxStandingApproval)
            {
                errors["standingApprovalMax"] = [DurationText.Problem(r.StandingApprovalMax, WorkflowSettings.MinStandingApproval, WorkflowSettings.MaxStandingApproval)];
            }
            else
            {
                w = w with { StandingApprovalMax = cap };
            }
        }
        if (r.Notifications is { } n)
        {
            w = w with { Notifications = Notifications(n, w.Notifications, errors) };
        }
        if (w.Escalation.Count > 0 && w.Sla is null && !errors.ContainsKey("sla"))
        {
            errors["sla"] = ["Escalation starts when the SLA runs out: set an SLA too."];
        }
        return w;
    }

    private static NotificationSettings? Notifications(NotificationsRequest n, NotificationSettings? current, Dictionary<string, string[]> errors)
    {
        string? url = null, secret = null;
        if (!string.IsNullOrEmpty(n.WebhookUrl))
        {
            if (OutboundUrl.Parse(n.WebhookUrl) is null)
            {
                errors["notifications.webhookUrl"] = [OutboundUrl.Rule];
            }
            url = n.WebhookUrl;
            // A secret left out keeps the one set before (the API never shows it back).
            // (The one kept is stored encrypted, so only a new one is measured.)
            secret = n.WebhookSecret ?? current?.WebhookSecret;
            if (n.WebhookSecret is { } given ? given is not { Length: >= 16 and <= 256 } : secret is null)
            {
                errors["notifications.webhookSecret"] = ["16 to 256 characters; used for the X-Signature HMAC-SHA256."];
            }
        }
        SmtpSettings? smtp = null;
        if (n.Smtp is { } s && !string.IsNullOrEmpty(s.Host))
        {
            if (s.Host.Length > 255 || s.Host.Any(char.IsWhiteSpace))
            {
                errors["notifications.smtp.host"] = ["A host name or address."];
            }
            if (s.Port is < 1 or > 65535)
            {
                errors["notifications.smtp.port"] = ["From 1 to 65535."];
            }
            if (!IsAddress(s.From))
            {
                errors["notifications.smtp.from"] = ["An e-mail address."];
            }
            if (s.To is { } to && (to.Count > 50 || to.Any(a => !IsAddress(a))))
            {
                errors["notifications.smtp.to"] = ["Up to 50 e-mail addresses."];
            }
            var security = s.Security ?? (s.EnableSsl is { } ssl ? ssl ? SmtpSecurity.StartTls : SmtpSecurity.None : null)
                           ?? current?.Smtp?.Security ?? SmtpSecurity.StartTls;
            if (!SmtpSecurity.IsKnown(security))
            {
                errors["notifications.smtp.security"] = ["One of starttls (TLS required after connecting; the default), tls (TLS from the start, port 465) or none."];
            }
            smtp = new SmtpSettings
            {
                Host = s.Host,
                Port = s.Port ?? 25,
                From = s.From ?? "",
                To = s.To ?? [],
                EnableSsl = security != SmtpSecurity.None,
                Security = security,
                UserName = string.IsNullOrEmpty(s.UserName) ? null : s.UserName,
                Password = s.Password ?? current?.Smtp?.Password,
            };
        }
        var settings = new NotificationSettings { WebhookUrl = url, WebhookSecret = url is null ? null : secret, Smtp = smtp };
        return settings.Any ? settings : null;
    }

    private static string DurationProblem(string? text) =>
        DurationText.Problem(text, WorkflowSettings.MinDuration, WorkflowSettings.MaxDuration);

    private static TimeSpan? OptionalDuration(string field, string text, Dictionary<string, string[]> errors, TimeSpan? current)
    {
        if (text.Length == 0 || text == "off")
        {
            return null;
        }
        if (!TryDuration(text, out var value))
        {
            errors[field] = [DurationProblem(text) + " \"off\" turns it off."];
            return current;
        }
        return value;
    }

    private static bool TryDuration(string text, out TimeSpan value) =>
        DurationText.TryParse(text, out value) && value >= WorkflowSettings.MinDuration && value <= WorkflowSettings.MaxDuration;

    private static bool IsAddress(string? text) =>
        text is { Length: > 2 and <= 254 } && System.Net.Mail.MailAddress.TryCreate(text, out _);
}

/// <summary>How the SMTP connection is protected.</summary>
public static class SmtpSecurity
{
    /// <summary>Plain connection, then STARTTLS, which the server must offer: nothing is sent before TLS.</summary>
    public const string StartTls = "starttls";

    /// <summary>TLS from the first byte (SMTPS, usually port 465).</summary>
    public const string Tls = "tls";

    /// <summary>No TLS: the mail and any credentials travel in plain text. Only where <c>Outbound:AllowInsecureSmtp</c> allows it.</summary>
    public const string None = "none";

    public static bool IsKnown(string? value) => value is StartTls or Tls or None;
}

/// <summary>An address the app calls out to (webhooks): absolute http(s), with no credentials in it.</summary>
public static class OutboundUrl
{
    public const string Rule = "An absolute http(s) URL, without user:password@ (put credentials in the secret).";

    public static Uri? Parse(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" && url.UserInfo.Length == 0 ? url : null;
}
