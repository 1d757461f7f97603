using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Admin;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Secrets;

namespace ReviewerPortal.Tests.Components;

/// <summary>The admin's Slack panel: the webhook URL and signing secret are write-only (never shown back), the user mapping is edited as lines.</summary>
public sealed class SlackPanelTests : PortalTestContext
{
    private const string Secret = "panel-signing-secret-Tx93Lq";
    private const string Hook = "http://127.0.0.1:9/services/T0ACME/B0PANEL/Vy72Kd";

    [Fact]
    public async Task The_admin_sets_slack_and_the_secrets_are_stored_encrypted_and_never_shown_back()
    {
        SignIn("ada", Roles.Admin);
        Services.AddSingleton(App.Services.GetRequiredService<TenantSettingsService>());
        var tenants = App.Services.GetRequiredService<TenantStore>();
        var before = (await tenants.GetSettingsAsync("acme"))!;
        var cut = Render<SlackPanel>(p => p.Add(c => c.Settings, before));

        cut.Find("input[data-testid=slack-webhook], [data-testid=slack-webhook] input").Change(Hook);
        cut.Find("input[data-testid=slack-secret], [data-testid=slack-secret] input").Change("short");
        cut.Find("textarea[data-testid=slack-users], [data-testid=slack-users] textarea").Change("U0ALICE = alice\nU0BOB = bob");
        cut.Find("[data-testid=save-slack]").Click();

        cut.WaitForAssertion(() => Assert.Contains("slack.signingSecret", cut.Markup));
        Assert.Null((await tenants.GetSettingsAsync("acme"))!.Slack);

        cut.Find("input[data-testid=slack-secret], [data-testid=slack-secret] input").Change(Secret);
        cut.Find("[data-testid=save-slack]").Click();

        cut.WaitForElement("[data-testid=slack-saved]");
        var slack = (await tenants.GetSettingsAsync("acme"))!.Slack!;
        Assert.StartsWith(TenantSecrets.Prefix, slack.SigningSecret);
        Assert.StartsWith(TenantSecrets.Prefix, slack.WebhookUrl);
        Assert.Equal("bob", slack.Users["U0BOB"]);
        var secrets = App.Services.GetRequiredService<TenantSecrets>();
        Assert.Equal(Secret, secrets.Reveal("acme", slack.SigningSecret));

        // Shown again (as after a reload): set, never the values; saving the mapping alone keeps both.
        var reloaded = (await tenants.GetSettingsAsync("acme"))!;
        var again = Render<SlackPanel>(p => p.Add(c => c.Settings, reloaded));
        Assert.DoesNotContain(Secret, again.Markup);
        Assert.DoesNotContain("B0PANEL", again.Markup);
        Assert.Contains("(set)", again.Markup);
        again.Find("textarea[data-testid=slack-users], [data-testid=slack-users] textarea").Change("U0ALICE = alice");
        again.Find("[data-testid=save-slack]").Click();
        again.WaitForElement("[data-testid=slack-saved]");
        slack = (await tenants.GetSettingsAsync("acme"))!.Slack!;
        Assert.Equal(Secret, secrets.Reveal("acme", slack.SigningSecret));
        Assert.Equal(Hook, secrets.Reveal("acme", slack.WebhookUrl));
        Assert.Equal(["U0ALICE"], slack.Users.Keys);
    }
}
