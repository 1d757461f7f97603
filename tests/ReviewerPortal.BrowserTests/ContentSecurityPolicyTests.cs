using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>
/// The portal runs under its Content-Security-Policy in Debian's chromium: no violation, no console error, and the
/// Blazor circuit (a same-origin WebSocket) connects, so clicks work (security issue #17).
/// </summary>
public sealed class ContentSecurityPolicyTests : PortalBrowserTest
{
    /// <summary>A signed-in page that records every console error, page error and CSP violation report.</summary>
    private async Task<(IPage Page, List<string> Errors)> SignInRecordingAsync(string user)
    {
        var page = await Browser.NewPageAsync(App.BaseUrl);
        var errors = new List<string>();
        // Reported by the page itself, whatever the console shows.
        await page.Context.AddInitScriptAsync("""
            document.addEventListener('securitypolicyviolation', e =>
              console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI));
            """);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (errors)
                {
                    errors.Add(message.Text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (errors)
            {
                errors.Add("page error: " + error);
            }
        };
        await page.GotoAsync("/account/login");
        await page.FillAsync("#username", user);
        await page.FillAsync("#password", $"demo-{user}");
        await page.ClickAsync("#sign-in");
        await Expect(page.GetByTestId("signed-in-user")).ToHaveTextAsync(user);
        return (page, errors);
    }

    private static async Task OpenAsync(IPage page, string url)
    {
        var response = await page.GotoAsync(url);
        Assert.NotNull(response);
        var csp = await response!.HeaderValueAsync("content-security-policy");
        Assert.Contains("default-src 'self'", csp);
        await Expect(page.Locator("[data-interactive=yes]")).ToBeVisibleAsync(); // the circuit is connected
    }

    [SkippableFact]
    public async Task Queue_approval_and_admin_pages_run_under_the_policy_without_a_violation_and_respond_to_clicks()
    {
        var app = App;
        var id = (await app.Agent("acme").SubmitPayment(314)).Str("approvalId");

        var (alice, aliceErrors) = await SignInRecordingAsync("alice");
        await OpenAsync(alice, "/queue/acme");
        await alice.Locator($"[data-testid=queue-row][data-id='{id}']").ClickAsync();
        await alice.WaitForURLAsync($"**/approvals/{id}");
        await OpenAsync(alice, $"/approvals/{id}");
        await alice.GetByTestId("reason").FillAsync("checked under CSP");
        await alice.GetByTestId("approve").ClickAsync();
        await Expect(alice.GetByTestId("approval-state")).ToContainTextAsync("approved");

        var (ada, adaErrors) = await SignInRecordingAsync("ada");
        await OpenAsync(ada, "/admin/acme");
        await ada.GetByTestId("save-settings").ClickAsync();
        await Expect(ada.GetByTestId("settings-saved")).ToBeVisibleAsync();

        Assert.Empty(aliceErrors);
        Assert.Empty(adaErrors);
    }
}
