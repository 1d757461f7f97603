using System.Globalization;
using System.Net.Http.Json;
using Bunit;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Components.Pages.Account;
using ReviewerPortal.Components.Pages.Admin;
using ReviewerPortal.Components.Pages.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Delegation;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>The account page: who you are, your roles and tenants, and your out-of-office delegation.</summary>
public sealed class AccountPageTests : PortalTestContext
{
    private void AddDelegationServices()
    {
        Services.AddSingleton(App.Services.GetRequiredService<DelegationStore>());
        Services.AddSingleton(App.Services.GetRequiredService<DelegationService>());
        Services.AddSingleton(App.Services.GetRequiredService<AccountDirectory>());
    }

    private static string Local(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture);

    [Fact]
    public async Task An_approver_sees_who_they_are_and_sets_a_delegation()
    {
        AddDelegationServices();
        SignIn("alice", Roles.Reviewer);
        var cut = Render<Account>();
        cut.WaitForElement("[data-testid=delegate-to]");

        Assert.Equal("alice", cut.Find("[data-testid=account-name]").TextContent);
        Assert.Equal("reviewer", cut.Find("[data-testid=account-roles]").TextContent);
        Assert.Contains("approver", cut.Find("[data-testid=account-tenants] li[data-tenant=acme]").TextContent);
        Assert.Empty(cut.FindAll("[data-testid=my-delegation]"));

        var until = DateTimeOffset.UtcNow.AddDays(3);
        cut.Find("[data-testid=delegate-to]").Change("carol");
        cut.Find("[data-testid=delegation-until]").Change(Local(until));
        cut.Find("form").Submit();

        cut.WaitForAssertion(() => Assert.Contains("carol", cut.Find("[data-testid=my-delegation]").TextContent));
        var stored = await App.Services.GetRequiredService<DelegationStore>().GetAsync("alice");
        Assert.NotNull(stored);
        Assert.Equal("carol", stored.DelegateTo);
        Assert.Equal(Local(until), Local(stored.Until));

        cut.Find("[data-testid=end-delegation]").Click();
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll("[data-testid=my-delegation]")));
        Assert.Null(await App.Services.GetRequiredService<DelegationStore>().GetAsync("alice"));
    }

    [Fact]
    public void A_delegation_without_a_delegate_or_an_end_names_both_fields()
    {
        AddDelegationServices();
        SignIn("alice", Roles.Reviewer);
        var cut = Render<Account>();
        cut.WaitForElement("[data-testid=delegate-to]");

        cut.Find("form").Submit();

        cut.WaitForAssertion(() => Assert.Contains("Required", cut.Find("[data-testid=error-delegateTo]").TextContent));
        Assert.Contains("Required", cut.Find("[data-testid=error-until]").TextContent);
    }

    [Fact]
    public void An_on_call_account_has_nothing_to_delegate()
    {
        AddDelegationServices();
        SignIn("oscar", Roles.OnCall);
        var cut = Render<Account>();
        cut.WaitForElement("[data-testid=delegation]");

        Assert.Contains("nothing to delegate", cut.Find("[data-testid=delegation]").TextContent);
        Assert.Empty(cut.FindAll("[data-testid=delegate-to]"));
    }

    [Fact]
    public async Task The_delegate_sees_whom_they_decide_for_and_decides_for_them_on_the_approval_page()
    {
        AddDelegationServices();
        var away = await App.Account("alice").PutAsJsonAsync("/api/v1/me/delegation", new { delegateTo = "carol", until = DateTimeOffset.UtcNow.AddDays(2) });
        Assert.True(away.IsSuccessStatusCode, await away.Content.ReadAsStringAsync());
        var id = (await App.Agent("acme").SubmitPayment(43)).Str("approvalId");
        SignIn("carol", Roles.Reviewer);

        var account = Render<Account>();
        account.WaitForAssertion(() => Assert.Contains("alice", account.Find("[data-testid=deciding-for]").TextContent));
        Assert.Contains("delegate for alice", account.Find("[data-testid=account-tenants] li[data-tenant=acme]").TextContent);

        var detail = Render<ApprovalDetail>(p => p.Add(c => c.Id, id));
        detail.WaitForAssertion(() => Assert.Contains("alice", detail.Find("[data-testid=acting-for]").TextContent));
        detail.Find("[data-testid=reason]").Input("paid for alice");
        detail.Find("[data-testid=approve]").Click();
        detail.WaitForAssertion(() => Assert.Contains("approved", detail.Find("[data-testid=approval-state]").TextContent));
        detail.WaitForAssertion(() => Assert.Contains("user:carol for alice", detail.Markup));
    }

    [Fact]
    public async Task An_admin_sees_the_tenants_delegations_and_ends_one()
    {
        AddDelegationServices();
        var away = await App.Account("alice").PutAsJsonAsync("/api/v1/me/delegation", new { delegateTo = "carol", until = DateTimeOffset.UtcNow.AddDays(2) });
        Assert.True(away.IsSuccessStatusCode, await away.Content.ReadAsStringAsync());
        var gina = await App.Account("gina").PutAsJsonAsync("/api/v1/me/delegation", new { delegateTo = "carol", until = DateTimeOffset.UtcNow.AddDays(2) });
        Assert.True(gina.IsSuccessStatusCode, await gina.Content.ReadAsStringAsync());
        SignIn("ada", Roles.Admin);
        var acme = (await App.Services.GetRequiredService<ReviewerPortal.Features.Tenants.TenantStore>().GetSettingsAsync("acme"))!;

        var cut = Render<DelegationsPanel>(p => p.Add(c => c.Settings, acme));
        cut.WaitForAssertion(() => Assert.Contains("carol", cut.Find("[data-testid=delegations] li[data-user=alice]").TextContent));
        Assert.Empty(cut.FindAll("li[data-user=gina]")); // globex's person: not on acme's page

        cut.Find("[data-testid=end-delegation-alice]").Click();

        cut.WaitForAssertion(() => Assert.Contains("no longer decides for alice", cut.Find("[data-testid=delegation-ended]").TextContent));
        Assert.Empty(cut.FindAll("li[data-user=alice]"));
        Assert.Null(await App.Services.GetRequiredService<DelegationStore>().GetAsync("alice"));
        Assert.NotNull(await App.Services.GetRequiredService<DelegationStore>().GetAsync("gina"));
    }
}
