using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals.Links;

/// <summary>One approver's links for one notification: approve, reject, and the approval's page in the portal.</summary>
/// <remarks>With <see cref="SignInRequired"/> (a <c>stepUp</c> rule) approve and reject open the portal page as well.</remarks>
public sealed record ApproverLinks(string Approver, string Approve, string Reject, string Open, bool SignInRequired);

/// <summary>What a link shows or did: the HTTP status of the page, what happened, and the request as reviewers see it.</summary>
public enum LinkStatus { Ready, Decided, VoteRecorded, NotValid, Used, Expired, Superseded, AlreadyDecided, SignInRequired, Refused, Conflict, TryAgain }

public sealed record LinkView(LinkStatus Status, int HttpStatus, string Title, string Message)
{
    /// <summary>The approval, payload masked as reviewers see it (null for a link that is not valid).</summary>
    public Approval? Approval { get; init; }

    public ActionLinkToken? Token { get; init; }

    /// <summary>The signed link of the other verdict (posted by the page's other button).</summary>
    public string? Counterpart { get; init; }

    public string? PortalUrl { get; init; }

    /// <summary>The policy's changes since the approval's snapshot (empty when it did not drift).</summary>
    public IReadOnlyList<RuleDiff> PolicyDiff { get; init; } = [];
}

/// <summary>
/// Action links: each notification to an eligible approver carries an approve and a reject link, bound to the tenant, the
/// approval, its job hash, that approver, the verdict and an expiry (no later than the approval's, capped by
/// <c>ActionLinks:MaxLifetime</c>), signed with the tenant's key (<see cref="ActionLinkKeys"/>) and single-use (a
/// <c>SET NX</c> in the tenant's slot). Opening one (<c>GET /a/{token}</c>) only shows the request; the decision is a
/// POST from that page and goes through <see cref="ApprovalService.DecideAsync"/> as the link's approver, with the roles
/// the account has now, <c>via: link</c>. The Slack integration builds its "Open" link here too (<see cref="PortalUrl"/>).
/// </summary>
public sealed class ActionLinks(
    ActionLinkKeys keys,
    IApprovalStore store,
    TenantStore tenants,
    PolicyStore policies,
    ApprovalService approvals,
    TenantAccess access,
    AuditLog audit,
    RedisConnection redis,
    AccountDirectory accounts,
    IOptionsMonitor<PortalOptions> portal,
    IOptionsMonitor<ActionLinkOptions> options,
    TimeProvider time,
    ILogger<ActionLinks> logger)
{
    public const string Via = "link";

    /// <summary>Whether notifications carry links (a public base URL is set and links are on).</summary>
    public bool Enabled => options.CurrentValue.Enabled && portal.CurrentValue.BaseUri is not null;

    /// <summary>The approval's page in the portal (absolute with <c>Portal:PublicBaseUrl</c>, else relative).</summary>
    public string PortalUrl(string approvalId, string? decide = null) =>
        Absolute($"approvals/{Uri.EscapeDataString(approvalId)}{(decide is null ? "" : "?decide=" + decide)}");

    private string Absolute(string relative) => portal.CurrentValue.BaseUri is { } b ? new Uri(b, relative).ToString() : "/" + relative;

    /// <summary>
    /// The links for one approver of a pending approval, or null when links are off, the approval is no longer pending
    /// or the person may not decide it now.
    /// </summary>
    public async Task<ApproverLinks?> ForApproverAsync(Approval approval, string approver, CancellationToken cancellationToken = default)
    {
        if (!Enabled || approval.State != ApprovalStates.Pending || approver.Contains('\n'))
        {
            return null;
        }
        // Who may decide it now: an approver at its escalation level, or the delegate of one who is away.
        var settings = await tenants.GetSettingsAsync(approval.Tenant);
        if (settings is null || await accounts.FindUnlockedAsync(approver) is not { } person
            || (await access.DecisionRightAsync(person, settings, approval, approving: false, cancellationToken)).Code is not null)
        {
            return null;
        }
        var open = PortalUrl(approval.Id);
        if (await RequiresSignInAsync(approval))
        {
            return new ApproverLinks(approver, PortalUrl(approval.Id, "approve"), PortalUrl(approval.Id, "reject"), open, SignInRequired: true);
        }
        var now = time.GetUtcNow();
        var cap = now + options.CurrentValue.MaxLifetime;
        var expires = approval.ExpiresAt < cap ? approval.ExpiresAt : cap;
        if (expires <= now)
        {
            return null;
        }
        var (kid, _) = await keys.CurrentAsync(approval.Tenant);
        var token = new ActionLinkToken(kid, approval.Tenant, approval.Id, approval.JobHash, approver, Verdict.Approve, expires,
            Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
        return new ApproverLinks(approver, LinkUrl(await keys.SignAsync(token)), LinkUrl(await keys.SignAsync(token.Counterpart)), open, false);
    }

    private string LinkUrl(string token) => Absolute("a/" + token);

    /// <summary>Whether the rule that parked the approval says <c>stepUp: true</c> (a missing policy version counts as yes).</summary>
    public async Task<bool> RequiresSignInAsync(Approval approval)
    {
        if (approval.RuleId is not { Length: > 0 } ruleId)
        {
            return false;
        }
        var version = await policies.GetVersionAsync(approval.Tenant, approval.PolicySnapshot);
        return version is null || version.Document.Rules.FirstOrDefault(r => r.Id == ruleId)?.StepUp != false;
    }

    // ---------------------------------------------------------------- the page

    /// <summary>What the link shows when opened (GET): reads only, decides nothing, uses nothing.</summary>
    public async Task<LinkView> ViewAsync(string? text)
    {
        var token = await keys.VerifyAsync(text);
        if (token is null)
        {
            return NotValid();
        }
        var approval = await store.GetApprovalAsync(token.Tenant, token.ApprovalId);
        if (approval is null)
        {
            return NotValid();
        }
        var view = await DescribeAsync(token, approval);
        if (view is not null)
        {
            return view;
        }
        return await WithRequestAsync(new LinkView(LinkStatus.Ready, StatusCodes.Status200OK,
            token.Verdict == Verdict.Approve ? "Approve this request?" : "Reject this request?",
            $"Signed link for {token.User}. Nothing happens until you press a button; it works once, until {token.ExpiresAt:u}."), token, approval);
    }

    /// <summary>
    /// The decision posted from the page: the link of the pressed button (the page's own, or its counterpart for the
    /// other verdict), checked again, used once, and decided through the portal's decision path.
    /// </summary>
    public async Task<LinkView> DecideAsync(string? text, string? verdictText, string? counterpart, string? reason, CancellationToken cancellationToken)
    {
        var shown = await keys.VerifyAsync(text);
        Verdict? verdict = verdictText switch { "approve" => Verdict.Approve, "reject" => Verdict.Reject, _ => null };
        if (shown is null || verdict is null)
        {
            if (shown is null)
            {
                logger.LogWarning("An action link that does not verify was posted");
            }
            return shown is null ? NotValid() : new LinkView(LinkStatus.Refused, StatusCodes.Status400BadRequest, "Choose approve or reject", "The form said neither.");
        }
        var token = shown;
        if (verdict != shown.Verdict)
        {
            // The other button posts the counterpart link: same approver, approval, hash, expiry and single-use id.
            token = await keys.VerifyAsync(counterpart);
            if (token is null || token != shown.Counterpart)
            {
                logger.LogWarning("An action link's counterpart does not match the link");
                return NotValid();
            }
        }
        var approval = await store.GetApprovalAsync(token.Tenant, token.ApprovalId);
        if (approval is null)
        {
            return NotValid();
        }

        if (await RequiresSignInAsync(approval))
        {
            await RefusedAsync(token, approval, "sign_in_required", cancellationToken);
            return await WithRequestAsync(SignInView(approval, StatusCodes.Status403Forbidden), token, approval);
        }
        if (time.GetUtcNow() >= token.ExpiresAt)
        {
            await RefusedAsync(token, approval, "link_expired", cancellationToken);
            return await WithRequestAsync(Expired(token), token, approval);
        }
        if (token.JobHash != approval.JobHash)
        {
            await RefusedAsync(token, approval, "link_superseded", cancellationToken);
            return await WithRequestAsync(Superseded(approval), token, approval);
        }
        var used = RedisKeys.ActionLinkUsed(token.Tenant, token.Id);
        if (await redis.Database.KeyExistsAsync(used))
        {
            await RefusedAsync(token, approval, "link_used", cancellationToken);
            return await WithRequestAsync(Used(approval), token, approval);
        }
        if (approval.State != ApprovalStates.Pending)
        {
            return await WithRequestAsync(AlreadyDecided(approval), token, approval);
        }
        var settings = await tenants.GetSettingsAsync(token.Tenant);
        var caller = await accounts.FindUnlockedAsync(token.User);
        if (settings is null || caller is null
            || (await access.DecisionRightAsync(caller, settings, approval, approving: false, cancellationToken)).Code is not null)
        {
            // A removed approver's, a deleted or locked account's old link: refused, and audited as such.
            await RefusedAsync(token, approval, caller is null ? "account_unavailable" : "not_an_approver", cancellationToken);
            return await WithRequestAsync(new LinkView(LinkStatus.Refused, StatusCodes.Status403Forbidden, "This link no longer lets you decide",
                $"{token.User} may not decide this request now (the account is gone or locked, or no longer one of its approvers)."), token, approval);
        }

        // The one guard that counts when two clicks race: the first SET wins, the second sees the link used.
        var ttl = token.ExpiresAt - time.GetUtcNow() + TimeSpan.FromMinutes(1);
        if (!await redis.Database.StringSetAsync(used, $"{(token.Verdict == Verdict.Approve ? "approve" : "reject")}|{time.GetUtcNow():O}", ttl, When.NotExists))
        {
            await RefusedAsync(token, approval, "link_used", cancellationToken);
            return await WithRequestAsync(Used(approval), token, approval);
        }

        var outcome = await approvals.DecideAsync(caller, approval.Id, token.Verdict,
            new DecideCommand(string.IsNullOrWhiteSpace(reason) ? null : reason.Trim(), token.JobHash, null, Via), cancellationToken);
        var latest = outcome.Approval ?? approval;
        if (outcome.Kind is Outcome.Locked or Outcome.Unavailable || outcome.Code == "snapshot_changed")
        {
            // Nothing was decided: the link stays usable.
            await redis.Database.KeyDeleteAsync(used);
        }
        var view = outcome.Kind switch
        {
            Outcome.Ok when outcome.Code == "vote_recorded" => new LinkView(LinkStatus.VoteRecorded, StatusCodes.Status200OK, "Your vote is counted",
                $"{token.User} voted to {(token.Verdict == Verdict.Approve ? "approve" : "reject")}: {outcome.Detail}."),
            Outcome.Ok => new LinkView(LinkStatus.Decided, StatusCodes.Status200OK, latest.State == ApprovalStates.Approved ? "Approved" : "Rejected",
                $"{latest.State} by {latest.DecidedBy}. The agent is told at once."),
            Outcome.AlreadyDone or Outcome.Conflict when outcome.Code != "snapshot_changed" && latest.State != ApprovalStates.Pending => AlreadyDecided(latest),
            Outcome.AlreadyDone => new LinkView(LinkStatus.AlreadyDecided, StatusCodes.Status409Conflict, "Your vote was already counted", outcome.Detail ?? "It waits for the other approvers."),
            Outcome.Conflict when outcome.Code == "snapshot_changed" => new LinkView(LinkStatus.Conflict, StatusCodes.Status409Conflict, "The policy changed",
                "The tenant's policy changed since this request was submitted. Open it in the portal to re-evaluate it before deciding."),
            Outcome.Conflict when outcome.Code == "job_changed" => Superseded(latest),
            Outcome.Forbidden => new LinkView(LinkStatus.Refused, StatusCodes.Status403Forbidden, "You may not decide this request", outcome.Detail ?? "Refused."),
            Outcome.NotFound => NotValid(),
            _ => new LinkView(LinkStatus.TryAgain, StatusCodes.Status503ServiceUnavailable, "Try again in a moment", outcome.Detail ?? "Another decision is in progress."),
        };
        return await WithRequestAsync(view, token, latest);
    }

    /// <summary>Why an authentic link cannot decide (used, expired, superseded, decided, sign-in), or null when it can.</summary>
    private async Task<LinkView?> DescribeAsync(ActionLinkToken token, Approval approval)
    {
        if (await redis.Database.KeyExistsAsync(RedisKeys.ActionLinkUsed(token.Tenant, token.Id)))
        {
            return await WithRequestAsync(Used(approval), token, approval);
        }
        if (approval.State != ApprovalStates.Pending)
        {
            return await WithRequestAsync(AlreadyDecided(approval), token, approval);
        }
        if (token.JobHash != approval.JobHash)
        {
            return await WithRequestAsync(Superseded(approval), token, approval);
        }
        if (time.GetUtcNow() >= token.ExpiresAt)
        {
            return await WithRequestAsync(Expired(token), token, approval);
        }
        if (await RequiresSignInAsync(approval))
        {
            return await WithRequestAsync(SignInView(approval, StatusCodes.Status200OK), token, approval);
        }
        return null;
    }

    private static LinkView NotValid() => new(LinkStatus.NotValid, StatusCodes.Status404NotFound, "This link is not valid",
        "The link is incomplete or was not issued by this portal. Open the request from the portal instead.");

    private static LinkView Used(Approval a) => new(LinkStatus.Used, StatusCodes.Status410Gone, "This link was already used",
        a.State == ApprovalStates.Pending ? "Each link decides once. The request is still pending; open it in the portal."
            : $"Each link decides once. The request is already {Pretty(a.State)} by {a.DecidedBy ?? "the system"}.");

    private static LinkView AlreadyDecided(Approval a) => new(LinkStatus.AlreadyDecided, StatusCodes.Status409Conflict, $"Already {Pretty(a.State)}",
        a.State == ApprovalStates.ChangesRequested ? $"Changes were requested by {a.ChangesRequestedBy}; nothing to decide now."
            : $"The request is already {Pretty(a.State)} by {a.DecidedBy ?? "the system"}{(string.IsNullOrEmpty(a.Reason) ? "" : $": {a.Reason}")}.");

    private static LinkView Superseded(Approval a) => new(LinkStatus.Superseded, StatusCodes.Status409Conflict, "This link is out of date",
        $"The request was resubmitted (now version {a.Version}) after this link was sent. Open it in the portal to review the current version.");

    private static LinkView Expired(ActionLinkToken t) => new(LinkStatus.Expired, StatusCodes.Status410Gone, "This link has expired",
        $"It was valid until {t.ExpiresAt:u}. Open the request in the portal instead.");

    private LinkView SignInView(Approval a, int status) => new(LinkStatus.SignInRequired, status, "Sign in to decide",
        "The policy requires sign-in for this request: decide it in the portal.") { PortalUrl = PortalUrl(a.Id) };

    private static string Pretty(string state) => state.Replace('_', ' ');

    /// <summary>The view with the request as reviewers see it: the payload masked, the policy's drift since its snapshot.</summary>
    private async Task<LinkView> WithRequestAsync(LinkView view, ActionLinkToken token, Approval approval)
    {
        var settings = await tenants.GetSettingsAsync(approval.Tenant);
        IReadOnlyList<RuleDiff> diff = [];
        var current = await policies.GetCurrentAsync(approval.Tenant);
        if (current is not null && current.Snapshot != approval.PolicySnapshot)
        {
            diff = Policies.PolicyDiff.Compare((await policies.GetVersionAsync(approval.Tenant, approval.PolicySnapshot))?.Document, current.Document);
        }
        return view with
        {
            Approval = PayloadMasking.Mask(approval, settings?.Redaction.Fields ?? []),
            Token = token,
            Counterpart = view.Status == LinkStatus.Ready ? await keys.SignAsync(token.Counterpart) : null,
            PortalUrl = view.PortalUrl ?? PortalUrl(approval.Id),
            PolicyDiff = diff,
        };
    }

    private async Task RefusedAsync(ActionLinkToken token, Approval approval, string code, CancellationToken cancellationToken)
    {
        var entry = audit.NewEntry(approval.Tenant, "user:" + token.User, (token.Verdict == Verdict.Approve ? "approve" : "reject") + "_refused");
        entry.ApprovalId = approval.Id;
        entry.JobId = approval.JobId;
        entry.FromState = approval.State;
        entry.ToState = approval.State;
        entry.PolicySnapshot = approval.PolicySnapshot;
        entry.JobHash = approval.JobHash;
        entry.Reason = code;
        entry.Details = "via: " + Via;
        await audit.AppendAsync(entry, cancellationToken);
    }
}
