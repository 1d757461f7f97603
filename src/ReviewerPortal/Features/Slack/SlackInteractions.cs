using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Secrets;

namespace ReviewerPortal.Features.Slack;

/// <summary>A button click whose signature verified with its tenant's signing secret.</summary>
/// <remarks><see cref="Verdict"/> is null for the Open button (a link: Slack reports the click, nothing is decided).</remarks>
public sealed record SlackClick(string Tenant, TenantSettings Settings, string ApprovalId, string JobHash, Verdict? Verdict, string UserId,
    string? ResponseUrl);

/// <summary>
/// Slack's button clicks (<c>block_actions</c>). A click is believed only when <c>X-Slack-Signature</c> is
/// <c>v0=</c> + HMAC-SHA256 of <c>v0:{timestamp}:{body}</c> with the signing secret of the tenant its button names, and
/// <c>X-Slack-Request-Timestamp</c> is within 5 minutes of now (older is a replay). The Slack user is the account the
/// tenant's mapping names; the decision goes through <see cref="ApprovalService.DecideAsync"/> with via <c>slack</c>
/// and the job hash of the message, so eligibility, four-eyes, quorum and the audit are the portal's. A refusal is
/// audited and told to the person who clicked (an ephemeral answer); a decision replaces the message with its outcome.
/// </summary>
public sealed class SlackInteractions(
    TenantStore tenants,
    TenantSecrets secrets,
    IApprovalStore store,
    ApprovalService approvals,
    AuditLog audit,
    SlackMessages messages,
    AccountDirectory accounts,
    TimeProvider time,
    ILogger<SlackInteractions> logger)
{
    public const string Via = "slack";
    public static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(5);

    /// <summary>The click, when the body is a button click of a tenant with Slack whose signature and timestamp verify; else null.</summary>
    public async Task<SlackClick?> VerifyAsync(string body, string? timestamp, string? signature)
    {
        if (string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signature) || Parse(body) is not { } click)
        {
            return null;
        }
        // Read before the signature is checked only to know whose secret checks it; nothing else is used before.
        var settings = await tenants.GetSettingsAsync(click.Tenant);
        if (settings?.Slack?.SigningSecret is not { } stored || secrets.Reveal(click.Tenant, stored) is not { Length: > 0 } secret)
        {
            return null;
        }
        if (!long.TryParse(timestamp, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
            || seconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds()
            || (time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(seconds)).Duration() > MaxAge)
        {
            return null;
        }
        var expected = "v0=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"v0:{timestamp}:{body}")));
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(expected), Encoding.UTF8.GetBytes(signature))
            ? click with { Settings = settings }
            : null;
    }

    /// <summary>The click a form body <c>payload={json}</c> describes; null for anything else.</summary>
    private static SlackClick? Parse(string body)
    {
        try
        {
            if (!QueryHelpers.ParseQuery(body).TryGetValue("payload", out var values) || values.Count != 1 || values[0] is not { } json)
            {
                return null;
            }
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || Text(root, "type") != "block_actions"
                || !root.TryGetProperty("actions", out var actions) || actions.ValueKind != JsonValueKind.Array || actions.GetArrayLength() != 1
                || !root.TryGetProperty("user", out var user) || Text(user, "id") is not { Length: > 0 } userId)
            {
                return null;
            }
            var action = actions[0];
            var actionId = Text(action, "action_id");
            Verdict? verdict = actionId switch
            {
                SlackMessages.ApproveAction => Verdict.Approve,
                SlackMessages.RejectAction => Verdict.Reject,
                _ => null,
            };
            var value = Text(action, "value")?.Split('|');
            if (verdict is null && actionId != SlackMessages.OpenAction || value is not [var tenant, var approvalId, var jobHash] || !TenantIds.IsValid(tenant))
            {
                return null;
            }
            return new SlackClick(tenant, null!, approvalId, jobHash, verdict, userId, Text(root, "response_url"));
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Text(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    /// <summary>Decides a verified click as its person, then updates the message (or answers the person alone).</summary>
    public async Task HandleAsync(SlackClick click, CancellationToken cancellationToken)
    {
        if (click.Verdict is not { } verdict)
        {
            return; // the Open button: the browser opens the portal, where the person signs in
        }
        var step = verdict == Verdict.Approve ? "approve" : "reject";
        var approval = ApprovalIds.LooksValid(click.ApprovalId) ? await store.GetApprovalAsync(click.Tenant, click.ApprovalId) : null;
        if (approval is null)
        {
            // Another tenant's approval reads exactly as one that does not exist.
            await RefusedAsync(click, null, step, "not_found", $"approval {click.ApprovalId}", cancellationToken);
            await messages.RespondAsync(click.ResponseUrl, SlackMessages.Ephemeral($"There is no approval {click.ApprovalId} to decide here."), cancellationToken);
            return;
        }
        if (await CallerAsync(click) is not { } caller)
        {
            await RefusedAsync(click, approval, step, "unknown_slack_user", null, cancellationToken);
            await messages.RespondAsync(click.ResponseUrl, SlackMessages.Ephemeral(
                $"Your Slack user ({click.UserId}) is not linked to a reviewer account of this tenant: nothing was decided. " +
                "An admin maps Slack users to accounts in the tenant's Slack settings."), cancellationToken);
            return;
        }

        var outcome = await approvals.DecideAsync(caller, approval.Id, verdict, new DecideCommand(null, click.JobHash, null, Via), cancellationToken);
        var now = outcome.Approval ?? approval;
        var decided = verdict == Verdict.Approve ? "Approved" : "Rejected";
        var answer = outcome switch
        {
            { Kind: Outcome.Ok, Code: "vote_recorded" } => SlackMessages.Ephemeral($"Your {step} vote is counted ({outcome.Detail})."),
            { Kind: Outcome.Ok } => messages.Outcome(now, click.Settings, $"{decided} by {caller.Name} in Slack."),
            { Kind: Outcome.AlreadyDone } when now.State != ApprovalStates.Pending =>
                messages.Outcome(now, click.Settings, $"Already {now.State} by {now.DecidedBy ?? "the timer"}."),
            { Kind: Outcome.AlreadyDone } => SlackMessages.Ephemeral(outcome.Detail ?? "Your vote is already counted."),
            { Code: "job_changed" } => SlackMessages.Ephemeral(
                "The job changed since this message was posted (a new version): nothing was decided. Review it in the portal."),
            { Kind: Outcome.Forbidden or Outcome.Conflict } when now.State == ApprovalStates.Pending =>
                SlackMessages.Ephemeral($"Not {decided.ToLowerInvariant()}: {outcome.Detail}"),
            { Kind: Outcome.Conflict } => messages.Outcome(now, click.Settings, $"This request is already {now.State}."),
            { Kind: Outcome.NotFound } => SlackMessages.Ephemeral($"There is no approval {click.ApprovalId} to decide here."),
            _ => SlackMessages.Ephemeral("The approval is busy or the store is unavailable: try again in a moment."),
        };
        await messages.RespondAsync(click.ResponseUrl, answer, cancellationToken);
    }

    /// <summary>The account the tenant maps the Slack user to, as a caller with its roles now; null when there is none.</summary>
    private async Task<Caller?> CallerAsync(SlackClick click) =>
        click.Settings.Slack?.Users.GetValueOrDefault(click.UserId) is { } name ? await accounts.FindUnlockedAsync(name) : null;

    /// <summary>A click refused before it reached the decision path, audited in the tenant the click was signed for.</summary>
    private async Task RefusedAsync(SlackClick click, Approval? approval, string step, string code, string? details, CancellationToken cancellationToken)
    {
        var entry = audit.NewEntry(click.Tenant, "slack:" + click.UserId, step + "_refused");
        entry.ApprovalId = approval?.Id;
        entry.JobId = approval?.JobId;
        entry.FromState = approval?.State;
        entry.ToState = approval?.State;
        entry.Reason = code;
        entry.Details = AuditDetails.Join("via: " + Via, details);
        await audit.AppendAsync(entry, cancellationToken);
        logger.LogInformation("Slack click of {User} on {Approval} of {Tenant} refused: {Code}", click.UserId, click.ApprovalId, click.Tenant, code);
    }
}
