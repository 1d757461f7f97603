using System.Net.Http.Json;
using System.Text;
using Microsoft.Playwright;
using ReviewerPortal.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace ReviewerPortal.BrowserTests;

/// <summary>The portal in Debian's chromium against the running app, as reviewers use it.</summary>
public sealed class PortalFlowTests : PortalBrowserTest
{
    private static Task Interactive(IPage page) => BrowserSession.Interactive(page);

    private static async Task GoAsync(IPage page, string url)
    {
        await page.GotoAsync(url);
        await Interactive(page);
    }

    [SkippableFact]
    public async Task Reviewer_sees_a_submission_live_reviews_the_policy_diff_and_approves_while_the_agent_waits()
    {
        var app = App;
        var page = await SignInAsync("alice");
        await page.WaitForURLAsync("**/queue/acme");
        await Expect(page.GetByTestId("queue-empty")).ToBeVisibleAsync();

        // An agent submits: the row appears without a reload.
        var agent = app.Agent("acme");
        var id = (await agent.SubmitPayment(420)).Str("approvalId");
        var row = page.Locator($"[data-testid=queue-row][data-id='{id}']");
        await Expect(row).ToBeVisibleAsync();
        await Expect(page.GetByTestId("pending-count")).ToHaveTextAsync("1");
        await Screenshot(page, "queue");

        var waiting = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60");

        await row.ClickAsync();
        await page.WaitForURLAsync($"**/approvals/{id}");
        await Interactive(page);
        await Expect(page.GetByTestId("approval-state")).ToContainTextAsync("pending");
        await Expect(page.GetByTestId("payload")).ToContainTextAsync("INV-420");
        await Expect(page.GetByTestId("policy-unchanged")).ToBeVisibleAsync();

        // An admin publishes a new policy: the open page shows the diff against the submit-time snapshot.
        var published = await app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
            version: v1
            rules:
              - id: require-approval-prod-finance
                when: { topic: finance.payment.execute, env: production }
                decision: require_human
                ttl: 48h
              - id: salary-changes
                when: { topic: hr.salary.change }
                decision: require_human
            default: deny
            """, Encoding.UTF8, "application/yaml"));
        Assert.True(published.IsSuccessStatusCode);
        await Expect(page.Locator("[data-testid=policy-diff] [data-rule='salary-changes'][data-change='added']")).ToBeVisibleAsync();
        await Expect(page.Locator("[data-rule='require-approval-prod-finance'][data-change='changed']")).ToBeVisibleAsync();
        await Expect(page.Locator("[data-rule='deny-secrets-export'][data-change='removed']")).ToBeVisibleAsync();
        await Screenshot(page, "detail-policy-diff");

        // Approving against the old snapshot is refused in words, with the one action that resolves it.
        await page.GetByTestId("reason").FillAsync("validated invoice and policy context");
        await page.GetByTestId("approve").ClickAsync();
        await Expect(page.GetByTestId("conflict")).ToContainTextAsync("policy changed");
        await page.GetByTestId("reevaluate").ClickAsync();
        await Expect(page.GetByTestId("decision-message")).ToContainTextAsync("Re-evaluated");
        await page.GetByTestId("approve").ClickAsync();
        await Expect(page.GetByTestId("approval-state")).ToContainTextAsync("approved");
        await Expect(page.Locator("[data-testid=audit-trail] [data-action=approved]")).ToBeVisibleAsync();
        await Screenshot(page, "detail-approved");

        var decision = await (await waiting).Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        Assert.Equal("approved", decision.GetProperty("state").GetString());
        Assert.Equal("alice", decision.GetProperty("decidedBy").GetString());
    }

    [SkippableFact]
    public async Task Gina_never_sees_acmes_approval()
    {
        var app = App;
        var id = (await app.Agent("acme").SubmitPayment(7)).Str("approvalId");
        var globexId = (await app.Agent("globex").SubmitPayment(8)).Str("approvalId");

        var page = await SignInAsync("gina");
        await page.WaitForURLAsync("**/queue/globex");
        await Expect(page.Locator($"[data-id='{globexId}']")).ToBeVisibleAsync();
        await Expect(page.Locator($"[data-id='{id}']")).ToHaveCountAsync(0);

        await page.GotoAsync($"/approvals/{id}");
        await Expect(page.GetByTestId("not-found")).ToBeVisibleAsync();
        await page.GotoAsync("/queue/acme");
        await Expect(page.GetByTestId("not-found")).ToBeVisibleAsync();
    }

    [SkippableFact]
    public async Task On_call_board_and_admin_pages_render_every_tenant()
    {
        var app = App;
        await app.Agent("acme").SubmitPayment(1);
        await app.Agent("globex").SubmitPayment(2);

        var oscar = await SignInAsync("oscar");
        await GoAsync(oscar, "/oncall");
        await Expect(oscar.Locator("[data-testid=oncall-board] tr[data-tenant=acme] [data-testid=board-pending]")).ToHaveTextAsync("1");
        await Expect(oscar.Locator("[data-testid=oncall-board] tr[data-tenant=globex]")).ToBeVisibleAsync();
        await app.Agent("globex").SubmitPayment(3);
        await Expect(oscar.Locator("tr[data-tenant=globex] [data-testid=board-pending]")).ToHaveTextAsync("2");
        await Screenshot(oscar, "oncall-board");

        var ada = await SignInAsync("ada");
        await GoAsync(ada, "/admin/acme");
        await Expect(ada.GetByTestId("policy-yaml")).ToHaveValueAsync(new System.Text.RegularExpressions.Regex("allow-readonly"));
        await ada.GetByTestId("policy-yaml").FillAsync("version: v1\nrules:\n  - id: x\n    decision: maybe\n");
        await ada.GetByTestId("preview").ClickAsync();
        await Expect(ada.GetByTestId("policy-errors")).ToContainTextAsync("line 4, column 15");
        await Screenshot(ada, "admin");
    }

    private static async Task Screenshot(IPage page, string name)
    {
        var folder = Path.Combine(TestPaths.Repo, "artifacts", "screenshots");
        Directory.CreateDirectory(folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, name + ".png"), FullPage = true });
    }

    [SkippableFact]
    public async Task Reviewer_requests_changes_the_agent_resubmits_and_the_page_shows_what_changed()
    {
        var app = App;
        var agent = app.Agent("acme");
        var id = (await agent.SubmitPayment(5000)).Str("approvalId");
        var page = await SignInAsync("bob");
        await GoAsync(page, $"/approvals/{id}");

        await page.GetByTestId("reason").FillAsync("split into two payments under 2500");
        await page.GetByTestId("request-changes").ClickAsync();
        await Expect(page.GetByTestId("approval-state")).ToHaveTextAsync("changes_requested");
        await Expect(page.GetByTestId("changes-requested")).ToContainTextAsync("split into two payments");

        var resubmitted = await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit", new { payload = new { invoice = "INV-5000", amount = 2500, part = 1 } });
        Assert.True(resubmitted.IsSuccessStatusCode);

        await Expect(page.GetByTestId("approval-version")).ToHaveTextAsync("version 2");
        await Expect(page.Locator("[data-testid=version-diff] tr[data-path=amount][data-change=changed]")).ToContainTextAsync("2500");
        await Expect(page.Locator("[data-testid=version-diff] tr[data-path=part][data-change=added]")).ToBeVisibleAsync();
        await Screenshot(page, "version-diff");
        await page.GetByTestId("approve").ClickAsync();
        await Expect(page.GetByTestId("approval-state")).ToHaveTextAsync("approved");
    }

    [SkippableFact]
    public async Task Admin_sets_an_sla_with_an_escalation_ladder_and_the_case_board_shows_a_case()
    {
        var app = App;
        var page = await SignInAsync("ada");
        await GoAsync(page, "/admin/acme");
        await page.Locator("input[data-testid=wf-sla], [data-testid=wf-sla] input").FillAsync("5s");
        await page.GetByTestId("save-workflow").ClickAsync();
        await Expect(page.GetByTestId("workflow-settings")).ToContainTextAsync("from 10 seconds");

        await page.Locator("input[data-testid=wf-sla], [data-testid=wf-sla] input").FillAsync("4h");
        await page.Locator("textarea[data-testid=wf-escalation], [data-testid=wf-escalation] textarea").First.FillAsync("carol @ 8h");
        await page.GetByTestId("save-workflow").ClickAsync();
        await Expect(page.GetByTestId("workflow-saved")).ToBeVisibleAsync();
        var settings = await (await app.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal("4h", settings.Str("sla"));
        Assert.Equal("8h", settings.GetProperty("escalation")[0].Str("sla"));
        await Screenshot(page, "admin-workflow");

        var opened = await app.Agent("acme").PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech GmbH", documents = new[] { "passport", "register_extract" } });
        Assert.True(opened.IsSuccessStatusCode);
        await GoAsync(page, "/cases/acme");
        await Expect(page.GetByTestId("cases")).ToContainTextAsync("Onboarding Initech GmbH");
        await Expect(page.GetByTestId("case-state")).ToContainTextAsync("documents requested");
        await Screenshot(page, "cases");
    }

    [SkippableFact]
    public async Task Reviewer_narrows_the_queue_with_the_filter_bar_by_keyboard_and_the_theme_menu_closes_on_escape()
    {
        var app = App;
        var agent = app.Agent("acme");
        var payment = (await agent.SubmitPayment(77)).Str("approvalId");
        var notify = (await (await agent.Submit(new { topic = "customer.notify", env = "production", channel = "external", priority = "low", payload = new { to = "c-9" } })).Json()).Str("approvalId");
        var page = await SignInAsync("alice");
        await page.WaitForURLAsync("**/queue/acme");
        await Interactive(page);
        var rows = page.Locator("[data-testid=queue-row]");
        await Expect(rows).ToHaveCountAsync(2);

        // Each control is reached by its label; search waits for a pause in typing, then narrows the rows.
        await page.GetByLabel("Search topic, submitter, payload").PressSequentiallyAsync("c-9");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator($"[data-testid=queue-row][data-id='{notify}']")).ToBeVisibleAsync();
        await page.GetByLabel("Search topic, submitter, payload").FillAsync("");
        await Expect(rows).ToHaveCountAsync(2);

        await page.GetByLabel("Priority").SelectOptionAsync("high");
        await Expect(rows).ToHaveCountAsync(1);
        await Expect(page.Locator($"[data-testid=queue-row][data-id='{payment}']")).ToBeVisibleAsync();
        await page.GetByLabel("Priority").SelectOptionAsync("");
        await page.GetByLabel("Older than").SelectOptionAsync("15m");
        await Expect(page.GetByTestId("queue-empty")).ToBeVisibleAsync();
        await page.GetByLabel("Older than").SelectOptionAsync("");
        await Expect(rows).ToHaveCountAsync(2);

        // The theme menu opens from the bar and Escape closes it, focus back on its button.
        await page.Locator("[data-testid=theme-toggle] summary").ClickAsync();
        await Expect(page.GetByTestId("theme-dark")).ToBeVisibleAsync();
        await page.Keyboard.PressAsync("Escape");
        await Expect(page.GetByTestId("theme-dark")).ToBeHiddenAsync();
        await Expect(page.Locator("[data-testid=theme-toggle] summary")).ToBeFocusedAsync();
    }
}
