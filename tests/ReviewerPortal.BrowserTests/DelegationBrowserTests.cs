using System.Globalization;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>Out of office in the browser: alice names carol on her account page; carol approves alice's work for her.</summary>
public sealed class DelegationBrowserTests : PortalBrowserTest
{
    [SkippableFact]
    public async Task An_approver_sets_a_delegation_on_the_account_page_and_the_delegate_approves_for_them()
    {
        var app = App;
        var alice = await SignInAsync("alice");
        await alice.GetByRole(AriaRole.Link, new() { Name = "Account", Exact = true }).First.ClickAsync();
        await alice.WaitForURLAsync("**/account");
        await BrowserSession.Interactive(alice);
        await Expect(alice.GetByTestId("account-tenants")).ToContainTextAsync("acme — approver");

        var until = DateTime.Now.AddDays(3).ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture);
        await alice.GetByTestId("delegate-to").SelectOptionAsync("carol");
        await alice.GetByTestId("delegation-until").FillAsync(until);
        await alice.GetByTestId("save-delegation").ClickAsync();
        await Expect(alice.GetByTestId("my-delegation")).ToContainTextAsync("carol decides for you");

        var id = (await app.Agent("acme").SubmitPayment(77)).Str("approvalId");
        var carol = await SignInAsync("carol");
        await carol.GotoAsync($"/approvals/{id}");
        await BrowserSession.Interactive(carol);
        await Expect(carol.GetByTestId("acting-for")).ToContainTextAsync("alice");
        await carol.GetByTestId("reason").FillAsync("paid while alice is away");
        await carol.GetByTestId("approve").ClickAsync();
        await Expect(carol.GetByTestId("approval-state")).ToContainTextAsync("approved");
        await Expect(carol.GetByTestId("audit-trail")).ToContainTextAsync("user:carol for alice");
    }
}
