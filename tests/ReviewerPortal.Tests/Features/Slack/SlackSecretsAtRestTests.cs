using System.Net;
using System.Net.Http.Json;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Slack;

/// <summary>
/// Someone who can read the data folder (the embedded Garnet's log and checkpoint, the SQLite database) looks for the
/// tenant's Slack signing secret and incoming-webhook URL (which is a credential of its own): neither is there in plain text.
/// </summary>
public sealed class SlackSecretsAtRestTests
{
    private const string SigningSecret = "slack-signing-Wq4ZrT8nKc2Xv6Bm";
    private const string WebhookPath = "/services/T0ACME/B0HOOK/Xk3PqL9sVt7Rz2Wd";

    [Fact]
    public async Task Data_folder_holds_neither_the_slack_signing_secret_nor_the_webhook_url()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Redis:Configuration"] = "", // the app's own embedded Garnet, its data under Storage:DataPath
            ["Redis:KeyPrefix"] = "",
            ["Notifications:Enabled"] = "false",
        });
        Assert.Equal("embedded", app.Services.GetRequiredService<RedisConnection>().Mode);

        var put = await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            slack = new { webhookUrl = "http://127.0.0.1:9" + WebhookPath, signingSecret = SigningSecret, users = new Dictionary<string, string> { ["U0ALICE"] = "alice" } },
        });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var shown = await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Content.ReadAsStringAsync();
        Assert.DoesNotContain(SigningSecret, shown);
        Assert.DoesNotContain(WebhookPath, shown);

        var found = await DataFolderScan.FindAsync(app,
            [("signing secret", Encoding.UTF8.GetBytes(SigningSecret)), ("webhook URL", Encoding.UTF8.GetBytes(WebhookPath))]);
        Assert.True(found.Count == 0, "Found on disk: " + string.Join("; ", found));
    }
}
