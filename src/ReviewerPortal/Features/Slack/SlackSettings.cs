using System.Text.RegularExpressions;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Slack;

/// <summary>
/// A tenant's Slack app: the incoming-webhook URL requests are posted to, the signing secret that proves a button click
/// came from Slack, and which Slack user is which account. The URL and the secret are credentials: stored encrypted
/// (<see cref="Infrastructure.Secrets.TenantSecrets"/>), never shown back.
/// </summary>
public sealed record SlackSettings
{
    public string? WebhookUrl { get; init; }
    public string? SigningSecret { get; init; }

    /// <summary>Slack user id (<c>U0123ABC</c>) → account name.</summary>
    public IReadOnlyDictionary<string, string> Users { get; init; } = new Dictionary<string, string>();
}

/// <summary><c>{webhookUrl, signingSecret, users: {"U0123ABC": "alice"}}</c>; a secret left out keeps the one set before; <c>{}</c> turns Slack off.</summary>
public sealed record SlackRequest
{
    public string? WebhookUrl { get; init; }
    public string? SigningSecret { get; init; }
    public IReadOnlyDictionary<string, string>? Users { get; init; }
}

/// <summary>The settings' <c>slack</c> as the API shows it: the URL and the secret as <c>(set)</c>.</summary>
public sealed record SlackResponse(string? WebhookUrl, string? SigningSecret, IReadOnlyDictionary<string, string> Users)
{
    public static SlackResponse? Of(SlackSettings? s) =>
        s is null ? null : new(s.WebhookUrl is null ? null : "(set)", s.SigningSecret is null ? null : "(set)", s.Users);
}

public static partial class SlackSettingsValidator
{
    [GeneratedRegex("^[UW][A-Z0-9]{2,30}$")]
    private static partial Regex UserId();

    /// <summary>The request's <c>slack</c> applied to the current settings, each field at fault named (<c>slack.signingSecret</c>).</summary>
    public static SlackSettings? Apply(SlackSettings? current, SlackRequest? r, Dictionary<string, string[]> errors)
    {
        if (r is null)
        {
            return current;
        }
        if (r.WebhookUrl is null && r.SigningSecret is null && r.Users is null)
        {
            return null; // {} turns Slack off
        }
        var url = r.WebhookUrl ?? current?.WebhookUrl;
        if (r.WebhookUrl is not null && OutboundUrl.Parse(r.WebhookUrl) is null)
        {
            errors["slack.webhookUrl"] = [OutboundUrl.Rule];
        }
        var secret = r.SigningSecret ?? current?.SigningSecret;
        if (r.SigningSecret is not null && r.SigningSecret is not { Length: >= 16 and <= 256 })
        {
            errors["slack.signingSecret"] = ["16 to 256 characters: the app's Signing Secret (Slack app settings → Basic Information)."];
        }
        else if (secret is null && url is not null)
        {
            errors["slack.signingSecret"] = ["Required with a webhook URL: without it no button click can be verified."];
        }
        var users = r.Users ?? current?.Users ?? new Dictionary<string, string>();
        if (users.Count > 1000 || users.Any(u => !UserId().IsMatch(u.Key) || string.IsNullOrWhiteSpace(u.Value) || u.Value.Length > 256))
        {
            errors["slack.users"] = ["Up to 1000 Slack user ids (U0123ABC) each mapped to an account name."];
        }
        return new SlackSettings
        {
            WebhookUrl = url,
            SigningSecret = secret,
            Users = users.ToDictionary(u => u.Key, u => u.Value.Trim(), StringComparer.Ordinal),
        };
    }
}
