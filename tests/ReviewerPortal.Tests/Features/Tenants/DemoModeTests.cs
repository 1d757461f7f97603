using System.Net;
using Microsoft.AspNetCore.Mvc.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Tenants;

/// <summary>The demo accounts' secrets are public (README): they exist only where someone asked for them.</summary>
public sealed class DemoModeTests
{
    [Fact]
    public async Task A_production_start_without_the_setting_has_no_demo_accounts()
    {
        // A plain start of the published app: Production, the embedded store (no Redis configured), Demo:Enabled not set.
        await using var app = await TestApp.StartAsync(redis: "", settings: new Dictionary<string, string?> { ["Demo:Enabled"] = null },
            environment: "Production");

        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Account("ada").GetAsync("/api/v1/tenants")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Agent("acme").Submit(new { topic = "knowledge.read", env = "production", payload = new { q = 1 } })).StatusCode);
        var login = await app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }).GetStringAsync("/account/login");
        Assert.DoesNotContain("demo-banner", login);
    }

    [Fact]
    public async Task With_demo_accounts_every_portal_page_says_so()
    {
        await using var app = await TestApp.StartAsync(); // Demo:Enabled=true

        var login = await app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }).GetStringAsync("/account/login");

        Assert.Contains("data-testid=\"demo-banner\"", login);
        Assert.Contains("Demo accounts are enabled", login);
    }
}
