using System.Net;
using System.Net.Http.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Tenants;

/// <summary>Outbound addresses carry no credentials in the URL (security pass item 7): a 400 naming the field, nothing saved.</summary>
public sealed class OutboundUrlTests
{
    [Theory]
    [InlineData("http://user:password@hooks.example/x")]
    [InlineData("https://token@hooks.example/x")]
    public async Task A_webhook_address_with_user_info_is_refused_for_dispatch_and_notifications(string url)
    {
        await using var app = await TestApp.StartAsync();
        var ada = app.Account("ada");

        var dispatch = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { dispatch = new { kind = "webhook", url, secret = "a-secret-of-16-chars-or-more" } });
        var notifications = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { notifications = new { webhookUrl = url, webhookSecret = "a-secret-of-16-chars-or-more" } });

        Assert.Equal(HttpStatusCode.BadRequest, dispatch.StatusCode);
        Assert.True((await dispatch.Json()).GetProperty("errors").TryGetProperty("dispatch.url", out _));
        Assert.Equal(HttpStatusCode.BadRequest, notifications.StatusCode);
        Assert.True((await notifications.Json()).GetProperty("errors").TryGetProperty("notifications.webhookUrl", out _));
        var settings = await (await ada.GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.DoesNotContain("password@", settings.GetRawText());
        Assert.DoesNotContain("token@", settings.GetRawText());
    }
}
