using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Infrastructure.Secrets;

namespace ReviewerPortal.Features.Tenants;

public sealed record SettingsUpdate(IDictionary<string, string[]> Errors, TenantSettings? Settings, string? Note);

/// <summary>Validates and applies a change of a tenant's settings, audited; the API and the admin page both call it.</summary>
public sealed class TenantSettingsService(TenantStore tenants, AuditLog audit, Dispatch.DispatchSignal dispatchSignal,
    Approvals.AccessChanges accessChanges, IServiceScopeFactory scopes, OutboundGuard outbound, TenantSecrets secrets,
    Redaction.Redactor redactor)
{
    public async Task<SettingsUpdate> UpdateAsync(TenantSettings current, TenantSettingsRequest request, Caller caller, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        var updated = current;
        if (request.ApprovalTtl is not null)
        {
            if (!DurationText.TryParse(request.ApprovalTtl, out var ttl) || ttl < TenantSettings.MinApprovalTtl || ttl > TenantSettings.MaxApprovalTtl)
            {
                errors["approvalTtl"] = [DurationText.Problem(request.ApprovalTtl, TenantSettings.MinApprovalTtl, TenantSettings.MaxApprovalTtl)];
            }
            else
            {
                updated = updated with { ApprovalTtl = ttl };
            }
        }
        if (request.Approvers is not null)
        {
            if (request.Approvers.Count > 200 || request.Approvers.Any(a => string.IsNullOrWhiteSpace(a) || a.Length > 256 || a.Contains(',')))
            {
                errors["approvers"] = ["Up to 200 user names, none empty or containing a comma."];
            }
            else
            {
                updated = updated with { Approvers = [.. request.Approvers.Select(a => a.Trim()).Distinct(StringComparer.Ordinal)] };
            }
        }
        if (request.DisplayName is not null)
        {
            if (request.DisplayName.Length > 200)
            {
                errors["displayName"] = ["At most 200 characters."];
            }
            else
            {
                updated = updated with { DisplayName = request.DisplayName };
            }
        }
        if (request.Dispatch is { } dispatch)
        {
            switch (dispatch.Kind)
            {
                case "none":
                    updated = updated with { Dispatch = null };
                    break;
                case DispatchSink.Redis when dispatch.Key is { Length: > 0 and <= 100 } key && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'):
                    updated = updated with { Dispatch = new DispatchSink(DispatchSink.Redis, key, null) };
                    break;
                case DispatchSink.Redis:
                    errors["dispatch.key"] = ["A list name: letters, digits, '-', '_', '.', ':', up to 100."];
                    break;
                case DispatchSink.Webhook when OutboundUrl.Parse(dispatch.Url) is { } url:
                    if (dispatch.Secret is not { Length: >= 16 and <= 256 })
                    {
                        errors["dispatch.secret"] = ["16 to 256 characters; used for the X-Signature HMAC-SHA256."];
                    }
                    else
                    {
                        updated = updated with { Dispatch = new DispatchSink(DispatchSink.Webhook, url.ToString(), dispatch.Secret) };
                    }
                    break;
                case DispatchSink.Webhook:
                    errors["dispatch.url"] = [OutboundUrl.Rule];
                    break;
                default:
                    errors["dispatch.kind"] = ["One of webhook, redis, none."];
                    break;
            }
        }
        updated = updated with { Workflow = WorkflowSettingsValidator.Apply(current.Workflow, request, updated.Approvers, errors) };
        updated = updated with { Redaction = Redaction.RedactionSettingsValidator.Apply(current.Redaction, request, redactor, errors) };
        updated = updated with { Slack = Slack.SlackSettingsValidator.Apply(current.Slack, request.Slack, errors) };
        await RequireReviewersAsync(request, errors);
        await CheckOutboundAsync(request, errors, cancellationToken);
        if (errors.Count > 0)
        {
            return new SettingsUpdate(errors, null, null);
        }
        updated = ProtectNewSecrets(updated, request);

        var entry = audit.NewEntry(current.Tenant, caller.Actor, "settings_changed");
        entry.Details = $"approvalTtl {DurationText.Format(current.ApprovalTtl)} → {DurationText.Format(updated.ApprovalTtl)}; " +
                        $"approvers [{string.Join(',', current.Approvers)}] → [{string.Join(',', updated.Approvers)}]; " +
                        $"dispatch {current.Dispatch?.Kind ?? "none"} → {updated.Dispatch?.Kind ?? "none"}" +
                        (current.Workflow == updated.Workflow ? "" : $"; workflow {Describe(current.Workflow)} → {Describe(updated.Workflow)}") +
                        (Redaction.RedactionSettingsValidator.Describe(current.Redaction, updated.Redaction) is { } redaction ? "; " + redaction : "") +
                        (current.Slack == updated.Slack ? "" : $"; slack {(current.Slack is null ? "off" : "on")} → {(updated.Slack is null ? "off" : $"on ({updated.Slack.Users.Count} user(s) mapped)")}");
        await audit.RecordAsync(entry, async json =>
        {
            await tenants.UpdateAsync(updated, json);
            return (true, true);
        }, cancellationToken);
        // Approvers or escalation levels may have changed: live hub connections follow at once, on every instance.
        await accessChanges.AnnounceAsync(current.Tenant);
        if (updated.Dispatch is not null && updated.Dispatch != current.Dispatch)
        {
            dispatchSignal.Wake(); // jobs parked while there was no sink go out now
        }
        var note = updated.ApprovalTtl != current.ApprovalTtl
            ? "The new TTL applies to approvals submitted from now on; pending approvals keep the deadline they were given."
            : null;
        return new SettingsUpdate(new Dictionary<string, string[]>(), updated, note);
    }

    /// <summary>The secrets this request sets, encrypted before they go anywhere (kept ones are encrypted already).</summary>
    private TenantSettings ProtectNewSecrets(TenantSettings s, TenantSettingsRequest r)
    {
        if (r.Dispatch?.Secret is { Length: > 0 } dispatchSecret && s.Dispatch is { Kind: DispatchSink.Webhook } sink)
        {
            s = s with { Dispatch = sink with { Secret = secrets.Protect(s.Tenant, dispatchSecret) } };
        }
        if (r.Notifications is { } rn && s.Workflow.Notifications is { } n)
        {
            if (rn.WebhookSecret is { Length: > 0 } webhookSecret && n.WebhookSecret is not null)
            {
                n = n with { WebhookSecret = secrets.Protect(s.Tenant, webhookSecret) };
            }
            if (rn.Smtp?.Password is { Length: > 0 } password && n.Smtp is { } smtp)
            {
                n = n with { Smtp = smtp with { Password = secrets.Protect(s.Tenant, password) } };
            }
            s = s with { Workflow = s.Workflow with { Notifications = n } };
        }
        if (r.Slack is { } rs && s.Slack is { } slack)
        {
            s = s with
            {
                Slack = slack with
                {
                    WebhookUrl = rs.WebhookUrl is { Length: > 0 } url ? secrets.Protect(s.Tenant, url) : slack.WebhookUrl,
                    SigningSecret = rs.SigningSecret is { Length: > 0 } signing ? secrets.Protect(s.Tenant, signing) : slack.SigningSecret,
                },
            };
        }
        return s;
    }

    private static string Describe(WorkflowSettings w) =>
        $"(sla {(w.Sla is { } sla ? DurationText.Format(sla) : "off")}, reminders {(w.ReminderInterval is { } r ? $"every {DurationText.Format(r)} ×{w.MaxReminders}" : "off")}, " +
        $"escalation {w.Escalation.Count} level(s), timeout {w.TimeoutOutcome}, quorum {(w.Quorum is { } q ? $"{q.Required}/{q.Of}" : "off")}, " +
        $"requester may approve {(w.RequesterMayApprove ? "yes" : "no")}, resubmissions {w.MaxResubmissions} within {DurationText.Format(w.ResubmissionWindow)}, " +
        $"notifications {(w.Notifications is { } n ? string.Join('+', new[] { n.WebhookUrl is null ? null : "webhook", n.Smtp is null ? null : "smtp" }.Where(x => x is not null)) : "off")})";


    /// <summary>
    /// The addresses this request sets for the app to call (dispatch webhook, notification webhook, SMTP server) pass
    /// the outbound rules (SSRF guard: public addresses over https unless <c>Outbound:*</c> allows more); plain SMTP
    /// only where the operator allows it. The same check runs again on every connection.
    /// </summary>
    private async Task CheckOutboundAsync(TenantSettingsRequest request, Dictionary<string, string[]> errors, CancellationToken cancellationToken)
    {
        if (request.Dispatch is { Kind: DispatchSink.Webhook } dispatch && !errors.ContainsKey("dispatch.url")
            && OutboundUrl.Parse(dispatch.Url) is { } dispatchUrl && await outbound.CheckUrlAsync(dispatchUrl, cancellationToken) is { } refused)
        {
            errors["dispatch.url"] = [refused];
        }
        if (request.Slack?.WebhookUrl is { } slackUrl && !errors.ContainsKey("slack.webhookUrl") && OutboundUrl.Parse(slackUrl) is { } slackHook
            && await outbound.CheckUrlAsync(slackHook, cancellationToken) is { } slackRefused)
        {
            errors["slack.webhookUrl"] = [slackRefused];
        }
        if (request.Notifications is not { } n)
        {
            return;
        }
        if (!errors.ContainsKey("notifications.webhookUrl") && OutboundUrl.Parse(n.WebhookUrl) is { } webhook
            && await outbound.CheckUrlAsync(webhook, cancellationToken) is { } webhookRefused)
        {
            errors["notifications.webhookUrl"] = [webhookRefused];
        }
        if (n.Smtp is { Host: { Length: > 0 } host } smtp)
        {
            if (!errors.ContainsKey("notifications.smtp.host") && await outbound.CheckHostAsync(host, cancellationToken) is { } hostRefused)
            {
                errors["notifications.smtp.host"] = [hostRefused];
            }
            var security = smtp.Security ?? (smtp.EnableSsl == false ? SmtpSecurity.None : null);
            if (security == SmtpSecurity.None && !outbound.InsecureSmtpAllowed && !errors.ContainsKey("notifications.smtp.security"))
            {
                errors["notifications.smtp.security"] =
                    ["Plain SMTP (mail and credentials unencrypted) needs Outbound:AllowInsecureSmtp; use starttls or tls."];
            }
        }
    }

    /// <summary>
    /// Approver lists and escalation levels name people who can decide: existing accounts with the reviewer role
    /// (not an on-call or admin account, not a name nobody signs in as). Each wrong entry is named in the answer.
    /// </summary>
    private async Task RequireReviewersAsync(TenantSettingsRequest request, Dictionary<string, string[]> errors)
    {
        List<(string Field, string Name)> named = [];
        if (request.Approvers is not null && !errors.ContainsKey("approvers"))
        {
            named.AddRange(request.Approvers.Select((a, i) => ($"approvers[{i}]", a.Trim())));
        }
        if (request.Escalation is not null)
        {
            for (var i = 0; i < request.Escalation.Count; i++)
            {
                named.AddRange((request.Escalation[i].Approvers ?? []).Select((a, j) => ($"escalation[{i}].approvers[{j}]", (a ?? "").Trim())));
            }
        }
        if (named.Count == 0)
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>();
        foreach (var (field, name) in named)
        {
            if (errors.ContainsKey(field))
            {
                continue;
            }
            var user = name.Length is > 0 and <= 256 ? await users.FindByNameAsync(name) : null;
            if (user is null)
            {
                errors[field] = [$"'{name}' is no account."];
            }
            else if (!await users.IsInRoleAsync(user, Auth.Roles.Reviewer))
            {
                errors[field] = [$"'{name}' is not a reviewer: only reviewers decide."];
            }
        }
    }
}
