using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// Two instances behind one address as a reviewer meets them: signed in on A, the queue on B opens without signing in
/// again and follows what happens on A live (one Redis Cluster, one PostgreSQL).
/// </summary>
public sealed class ScaleOutBrowserTests : IAsyncLifetime
{
    private TestApp? _a;
    private TestApp? _b;
    private BrowserSession? _browser;

    public async Task InitializeAsync()
    {
        var cluster = await TestServers.RedisClusterAsync();
        var pg = await TestServers.PostgresAsync();
        if (!BrowserSession.Installed || cluster is null || pg is null)
        {
            return;
        }
        var prefix = $"sb{Guid.NewGuid():N}:";
        _a = await TestApp.StartAsync(redis: cluster, postgres: pg, keyPrefix: prefix, kestrel: true, settings: BrowserSession.AppSettings());
        _b = await TestApp.StartAsync(redis: cluster, postgres: pg, keyPrefix: prefix, kestrel: true, settings: BrowserSession.AppSettings());
        _browser = await BrowserSession.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }
        foreach (var app in new[] { _a, _b })
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }
    }

    [SkippableFact]
    public async Task Signed_in_on_A_the_queue_on_B_opens_without_signing_in_and_shows_what_happens_on_A_live()
    {
        Skip.If(_a is null || _b is null, "chromium, redis-server (cluster) and postgresql are needed");
        var page = await _browser!.SignInAsync(_a.BaseUrl, "alice");

        // The same browser on B (another port of the same host: the same cookie): no sign-in page.
        await page.GotoAsync(_b.BaseUrl + "/queue/acme");
        await Expect(page.Locator("[data-interactive=yes]")).ToBeVisibleAsync();
        Assert.StartsWith(_b.BaseUrl, page.Url);
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync("alice");

        // Submitted on A: the row appears on B's page without a reload; approved on A: it leaves B's queue.
        var id = (await _a.Agent("acme").SubmitPayment(77)).Str("approvalId");
        var row = page.Locator($"[data-testid=queue-row][data-id='{id}']");
        await Expect(row).ToBeVisibleAsync();
        Assert.True((await _a.Account("bob").Approve(id)).IsSuccessStatusCode);
        await Expect(row).ToHaveCountAsync(0);
    }
}
