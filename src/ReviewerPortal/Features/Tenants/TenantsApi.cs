using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;

namespace ReviewerPortal.Features.Tenants;

public sealed record TenantSettingsRequest
{
    /// <summary>Duration, 1 minute to 30 days: <c>72h</c>, <c>3d</c>, <c>90m</c>, <c>72:00:00</c>, <c>3.00:00:00</c> or ISO 8601 (<c>PT72H</c>, <c>P3D</c>).</summary>
    public string? ApprovalTtl { get; init; }
    public IReadOnlyList<string>? Approvers { get; init; }
    public string? DisplayName { get; init; }

    /// <summary><c>{kind: "webhook", url, secret}</c>, <c>{kind: "redis", key}</c> or <c>{kind: "none"}</c>.</summary>
    public DispatchRequest? Dispatch { get; init; }

    /// <summary>Time to the first decision (a duration as for <see cref="ApprovalTtl"/>, 10 seconds to 365 days); <c>off</c> or empty removes it.</summary>
    public string? Sla { get; init; }
    public string? ReminderInterval { get; init; }
    public int? MaxReminders { get; init; }
    public IReadOnlyList<EscalationLevelRequest>? Escalation { get; init; }

    /// <summary><c>reject</c>, <c>approve</c> or <c>escalate</c>.</summary>
    public string? TimeoutOutcome { get; init; }

    /// <summary><c>{required, of, rejectsToReject?}</c>; <c>{}</c> turns quorum off.</summary>
    public QuorumRequest? Quorum { get; init; }
    public bool? RequesterMayApprove { get; init; }
    public string? ResubmissionWindow { get; init; }
    public int? MaxResubmissions { get; init; }

    /// <summary>The longest standing approval ("approve always") an approver may add, 1 minute to 24 hours (default 24h).</summary>
    public string? StandingApprovalMax { get; init; }

    /// <summary><c>{webhookUrl, webhookSecret, smtp: {host, port, from, to, security, userName, password}}</c>; <c>{}</c> turns them off.</summary>
    public NotificationsRequest? Notifications { get; init; }

    /// <summary>Payload paths masked wherever a person reads the payload (<c>apiKey</c>, <c>card.number</c>); <c>[]</c> clears them.</summary>
    public IReadOnlyList<string>? RedactFields { get; init; }

    /// <summary>The tenant's own secret patterns <c>{name, regex}</c>, scanned for in reasons and notes; <c>[]</c> clears them.</summary>
    public IReadOnlyList<RedactPatternRequest>? RedactPatterns { get; init; }

    /// <summary><c>{webhookUrl, signingSecret, users: {"U0123ABC": "alice"}}</c>; secrets left out are kept; <c>{}</c> turns Slack off.</summary>
    public Slack.SlackRequest? Slack { get; init; }
}

public sealed record RedactPatternRequest
{
    public string? Name { get; init; }
    public string? Regex { get; init; }
}

public sealed record DispatchRequest
{
    public string? Kind { get; init; }
    public string? Url { get; init; }
    public string? Key { get; init; }
    public string? Secret { get; init; }
}

public sealed record TenantSettingsResponse(string Tenant, string? DisplayName, string ApprovalTtl, long ApprovalTtlSeconds,
    IReadOnlyList<string> Approvers, string? Note = null)
{
    /// <summary>The sink, without its secret.</summary>
    public object? Dispatch { get; init; }

    public string? Sla { get; init; }
    public string? ReminderInterval { get; init; }
    public int MaxReminders { get; init; }
    public IReadOnlyList<EscalationLevelResponse> Escalation { get; init; } = [];
    public string TimeoutOutcome { get; init; } = "";
    public QuorumSettings? Quorum { get; init; }
    public bool RequesterMayApprove { get; init; }
    public string ResubmissionWindow { get; init; } = "";
    public int MaxResubmissions { get; init; }
    public string StandingApprovalMax { get; init; } = "";

    /// <summary>The channels, secrets shown as <c>(set)</c>.</summary>
    public NotificationsRequest? Notifications { get; init; }

    public IReadOnlyList<string> RedactFields { get; init; } = [];
    public IReadOnlyList<Redaction.RedactPattern> RedactPatterns { get; init; } = [];

    /// <summary>Slack, its webhook URL and signing secret shown as <c>(set)</c>.</summary>
    public Slack.SlackResponse? Slack { get; init; }
}

public sealed record EscalationLevelResponse(IReadOnlyList<string> Approvers, string Sla);

public sealed record TenantSummary(string Tenant, string? DisplayName);

public sealed record TenantListResponse(IReadOnlyList<TenantSummary> Items);

/// <summary>Tenant settings (admin writes; readers of the tenant read).</summary>
public static class TenantsApi
{
    public static IEndpointRouteBuilder MapTenantsApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/tenants").WithTags("Tenants").RequireAuthorization(AuthSetup.ApiPolicy);
        group.MapGet("/", List).WithName("ListTenants").WithSummary("The tenants the caller can read.");
        group.MapGet("/{tenant}/settings", GetSettings).WithName("GetTenantSettings");
        group.MapPut("/{tenant}/settings", PutSettings).WithName("PutTenantSettings").RequireAuthorization(AuthSetup.AdminPolicy)
            .WithSummary("Admin: approval TTL, approvers, dispatch sink, SLA, reminders, escalation, timeout outcome, quorum, separation of duties, resubmission, notifications, redaction.");
        return routes;
    }

    public static async Task<Ok<TenantListResponse>> List(ClaimsPrincipal user, TenantAccess access, TenantStore tenants)
    {
        var items = new List<TenantSummary>();
        foreach (var tenant in await access.ReadableTenantsAsync(Caller.From(user)))
        {
            items.Add(new TenantSummary(tenant, (await tenants.GetSettingsAsync(tenant))?.DisplayName));
        }
        return TypedResults.Ok(new TenantListResponse(items));
    }

    public static async Task<Results<Ok<TenantSettingsResponse>, ProblemHttpResult>> GetSettings(
        string tenant, ClaimsPrincipal user, TenantAccess access, TenantStore tenants)
    {
        if (!await access.CanReadAsync(Caller.From(user), tenant) || await tenants.GetSettingsAsync(tenant) is not { } settings)
        {
            return Problems.NotFound("tenant");
        }
        return TypedResults.Ok(ToResponse(settings));
    }

    public static async Task<Results<Ok<TenantSettingsResponse>, ValidationProblem, ProblemHttpResult>> PutSettings(
        string tenant, HttpRequest request, ClaimsPrincipal user, TenantStore tenants, TenantSettingsService service, CancellationToken cancellationToken)
    {
        var current = await tenants.GetSettingsAsync(tenant);
        if (current is null)
        {
            return Problems.NotFound("tenant");
        }
        var (body, error) = await JsonBody.ReadAsync(request, AppJsonContext.Default.TenantSettingsRequest);
        if (error is not null)
        {
            return error;
        }
        var result = await service.UpdateAsync(current, body!, Caller.From(user), cancellationToken);
        if (result.Errors.Count > 0)
        {
            return Problems.Invalid(result.Errors);
        }
        return TypedResults.Ok(ToResponse(result.Settings!) with { Note = result.Note });
    }

    internal static TenantSettingsResponse ToResponse(TenantSettings s) =>
        new(s.Tenant, s.DisplayName, DurationText.Format(s.ApprovalTtl), (long)s.ApprovalTtl.TotalSeconds, s.Approvers)
        {
            Dispatch = s.Dispatch is { } d
                ? new Dictionary<string, string?> { ["kind"] = d.Kind, [d.Kind == DispatchSink.Webhook ? "url" : "key"] = d.Target, ["secret"] = d.Secret is null ? null : "(set)" }
                : null,
            Sla = s.Workflow.Sla is { } sla ? DurationText.Format(sla) : null,
            ReminderInterval = s.Workflow.ReminderInterval is { } every ? DurationText.Format(every) : null,
            MaxReminders = s.Workflow.MaxReminders,
            Escalation = [.. s.Workflow.Escalation.Select(l => new EscalationLevelResponse(l.Approvers, DurationText.Format(l.Sla)))],
            TimeoutOutcome = s.Workflow.TimeoutOutcome,
            Quorum = s.Workflow.Quorum,
            RequesterMayApprove = s.Workflow.RequesterMayApprove,
            ResubmissionWindow = DurationText.Format(s.Workflow.ResubmissionWindow),
            MaxResubmissions = s.Workflow.MaxResubmissions,
            StandingApprovalMax = DurationText.Format(s.Workflow.StandingApprovalMax),
            Notifications = s.Workflow.Notifications is { } n
                ? new NotificationsRequest
                {
                    WebhookUrl = n.WebhookUrl,
                    WebhookSecret = n.WebhookSecret is null ? null : "(set)",
                    Smtp = n.Smtp is { } m
                        ? new SmtpRequest { Host = m.Host, Port = m.Port, From = m.From, To = m.To, Security = m.Security, EnableSsl = m.Security != SmtpSecurity.None, UserName = m.UserName, Password = m.Password is null ? null : "(set)" }
                        : null,
                }
                : null,
            RedactFields = s.Redaction.Fields,
            RedactPatterns = s.Redaction.Patterns,
            Slack = Slack.SlackResponse.Of(s.Slack),
        };
}
