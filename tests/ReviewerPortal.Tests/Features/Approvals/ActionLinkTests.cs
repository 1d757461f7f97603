using System.Buffers.Text;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Approvals.Links;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// Action links from notifications: <c>GET /a/{token}</c> only shows the request, the page's POST (antiforgery) decides
/// once through the portal's decision path as the link's approver; forged, altered, used, expired, superseded links,
/// removed approvers and sign-in rules are refused (and audited when the link is authentic).
/// </summary>
public sealed class ActionLinkTests : IAsyncLifetime
{
    public const string BaseUrl = "https://portal.example.test/";
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?>
    {
        ["Portal:PublicBaseUrl"] = BaseUrl,
        ["ActionLinks:MaxLifetime"] = "02:00:00",
        ["Notifications:Enabled"] = "false",
    });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ActionLinks Links => _app.Services.GetRequiredService<ActionLinks>();

    private HttpClient Browser() => _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    private async Task<(string Id, ApproverLinks Links)> SubmitAsync(string approver = "alice", string tenant = "acme", object? payload = null)
    {
        var agent = _app.Agent(tenant);
        var response = await agent.Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            priority = "high",
            payload = payload ?? new { invoice = "INV-7", amount = 420, iban = "DE02120300000000202051" },
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Json()).Str("approvalId");
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync(tenant, id);
        var links = await Links.ForApproverAsync(approval!, approver);
        Assert.NotNull(links);
        return (id, links);
    }

    private static string PathOf(string url) => new Uri(url).PathAndQuery;

    private static string Field(string html, string name) =>
        WebUtility.HtmlDecode(Regex.Match(html, $"name=\"{Regex.Escape(name)}\"[^>]*value=\"([^\"]*)\"").Groups[1].Value);

    /// <summary>Opens the link as a browser does and posts the page's form with the pressed button.</summary>
    private static async Task<(HttpResponseMessage Response, string Html)> ClickAsync(HttpClient browser, string link, string verdict,
        string? reason = null, string? openedPage = null)
    {
        var page = openedPage ?? await (await browser.GetAsync(PathOf(link))).Content.ReadAsStringAsync();
        var form = new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Field(page, "__RequestVerificationToken"),
            ["_handler"] = "link-decision",
            ["Verdict"] = verdict,
            ["Counterpart"] = Field(page, "Counterpart"),
            ["Reason"] = reason ?? "",
        };
        var response = await browser.PostAsync(PathOf(link), new FormUrlEncodedContent(form));
        return (response, await response.Content.ReadAsStringAsync());
    }

    private async Task<string> StateAsync(string id, string tenant = "acme") => (await Workflow.GetApprovalAsync(_app, id, tenant)).Str("state");

    private async Task<List<ReviewerPortal.Features.Audit.AuditEntry>> AuditAsync(string id)
    {
        await using var scope = _app.Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider.GetRequiredService<IDbContextFactory<AppDbContext>>().CreateDbContextAsync();
        return await db.AuditEntries.AsNoTracking().Where(e => e.ApprovalId == id).OrderBy(e => e.Sequence).ToListAsync();
    }

    [Fact]
    public async Task Opening_a_link_shows_the_request_masked_and_decides_nothing()
    {
        await Workflow.SetAsync(_app, new { redactFields = new[] { "iban" } });
        var (id, links) = await SubmitAsync();
        Assert.StartsWith(BaseUrl + "a/", links.Approve);
        using var browser = Browser();

        for (var i = 0; i < 3; i++) // a mail scanner, a link preview, the person
        {
            var response = await browser.GetAsync(PathOf(links.Approve));
            var html = await response.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains("finance.payment.execute", html);
            Assert.Contains("INV-7", html);
            Assert.DoesNotContain("DE02120300000000202051", html);
            Assert.Contains("data-testid=\"link-approve\"", html);
            Assert.Contains(BaseUrl + "approvals/" + id, html);
        }
        Assert.Equal("pending", await StateAsync(id));
        Assert.DoesNotContain(await AuditAsync(id), e => e.Action is "approved" or "rejected" or "approve_refused" or "reject_refused");
    }

    [Fact]
    public async Task A_post_without_antiforgery_is_refused_and_changes_nothing()
    {
        var (id, links) = await SubmitAsync();
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();

        var response = await browser.PostAsync(PathOf(links.Approve), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "link-decision",
            ["Verdict"] = "approve",
            ["Counterpart"] = Field(page, "Counterpart"),
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("pending", await StateAsync(id));
        // The link is still usable: nothing was spent.
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(PathOf(links.Approve))).StatusCode);
    }

    [Fact]
    public async Task A_link_decides_once_via_link_and_a_second_use_shows_who_decided()
    {
        var (id, links) = await SubmitAsync();
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();

        var (first, firstHtml) = await ClickAsync(browser, links.Approve, "approve", "checked the invoice", page);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Contains("approved by alice", firstHtml);
        Assert.Equal("approved", await StateAsync(id));
        var decided = Assert.Single(await AuditAsync(id), e => e.Action == "approved");
        Assert.Equal("user:alice", decided.Actor);
        Assert.Equal("via: link", decided.Details);
        Assert.Equal("checked the invoice", decided.Reason);

        // The same form again, and the reject link of the same pair: nothing more is decided.
        var (again, againHtml) = await ClickAsync(browser, links.Approve, "approve", openedPage: page);
        Assert.Equal(HttpStatusCode.Gone, again.StatusCode);
        Assert.Contains("already approved by alice", againHtml);
        var (other, otherHtml) = await ClickAsync(browser, links.Approve, "reject", openedPage: page);
        Assert.Equal(HttpStatusCode.Gone, other.StatusCode);
        Assert.Contains("already approved by alice", otherHtml);
        var opened = await browser.GetAsync(PathOf(links.Reject));
        Assert.Equal(HttpStatusCode.Gone, opened.StatusCode);
        Assert.Contains("already approved by alice", await opened.Content.ReadAsStringAsync());

        Assert.Single(await AuditAsync(id), e => e.Action is "approved" or "rejected");
        Assert.Equal(2, (await AuditAsync(id)).Count(e => e.Action.EndsWith("_refused") && e.Reason == "link_used" && e.Details == "via: link"));
    }

    [Fact]
    public async Task The_reject_button_decides_with_the_counterpart_link()
    {
        var (id, links) = await SubmitAsync("bob");
        using var browser = Browser();
        var (response, html) = await ClickAsync(browser, links.Approve, "reject", "wrong amount");
        Assert.True(HttpStatusCode.OK == response.StatusCode, response + "\n" + html + "\nPAGE\n" + await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync());
        Assert.Contains("rejected by bob", html);
        Assert.Equal("rejected", await StateAsync(id));
    }

    [Fact]
    public async Task Forged_and_altered_links_and_another_tenants_key_are_refused()
    {
        var (id, links) = await SubmitAsync();
        var (otherId, _) = await SubmitAsync();
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();
        var token = new Uri(links.Approve).Segments[^1];
        var parts = token.Split('.');
        var payload = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(parts[0]));

        // A flipped MAC; the approval id swapped for another approval; a token signed with globex's key; a made-up key.
        var flipped = parts[0] + "." + (parts[1][0] == 'A' ? "B" : "A") + parts[1][1..];
        var altered = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payload.Replace(id, otherId))) + "." + parts[1];
        var globexKid = (await _app.Services.GetRequiredService<ActionLinkKeys>().CurrentAsync("globex"));
        var asGlobex = payload.Split('\n');
        asGlobex[1] = globexKid.Kid;
        var globexPayload = Encoding.UTF8.GetBytes(string.Join('\n', asGlobex));
        var signedByGlobex = Base64Url.EncodeToString(globexPayload) + "." + Base64Url.EncodeToString(HMACSHA256.HashData(globexKid.Key, globexPayload));
        var made = Encoding.UTF8.GetBytes(payload);
        var madeUp = Base64Url.EncodeToString(made) + "." + Base64Url.EncodeToString(HMACSHA256.HashData(RandomNumberGenerator.GetBytes(32), made));

        foreach (var bad in new[] { flipped, altered, signedByGlobex, madeUp, "not-a-token" })
        {
            var opened = await browser.GetAsync("/a/" + bad);
            Assert.Equal(HttpStatusCode.NotFound, opened.StatusCode);
            var openedHtml = await opened.Content.ReadAsStringAsync();
            Assert.True(openedHtml.Contains("This link is not valid"), bad + "\n" + opened + "\n" + openedHtml);
            var (posted, _) = await ClickAsync(browser, BaseUrl + "a/" + bad, "approve", openedPage: page);
            Assert.Equal(HttpStatusCode.NotFound, posted.StatusCode);
        }
        Assert.Equal("pending", await StateAsync(id));
        Assert.Equal("pending", await StateAsync(otherId));
        Assert.DoesNotContain(await AuditAsync(id), e => e.Action is "approved" or "rejected");
    }

    [Fact]
    public async Task A_link_of_one_tenant_never_reaches_another_tenants_approval()
    {
        var (globexId, _) = await SubmitAsync("gina", "globex");
        var keys = _app.Services.GetRequiredService<ActionLinkKeys>();
        var (kid, _) = await keys.CurrentAsync("acme");
        // Signed with acme's own key, naming globex's approval: acme's links reach acme's approvals only.
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("globex", globexId);
        var token = await keys.SignAsync(new ActionLinkToken(kid, "acme", globexId, approval!.JobHash, "alice", Verdict.Approve,
            _clock.GetUtcNow().AddHours(1), "0123456789abcdef0123456789abcdef"));
        using var browser = Browser();

        Assert.Equal(HttpStatusCode.NotFound, (await browser.GetAsync("/a/" + token)).StatusCode);
        var (_, gina) = await SubmitAsync("gina", "globex");
        var page = await (await browser.GetAsync(PathOf(gina.Approve))).Content.ReadAsStringAsync();
        var (posted, _) = await ClickAsync(browser, BaseUrl + "a/" + token, "approve", openedPage: page);
        Assert.Equal(HttpStatusCode.NotFound, posted.StatusCode);
        Assert.Equal("pending", await StateAsync(globexId, "globex"));
    }

    [Fact]
    public async Task An_expired_link_shows_the_expired_page_and_cannot_decide()
    {
        var (id, links) = await SubmitAsync();
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();

        _clock.Advance(TimeSpan.FromHours(2) + TimeSpan.FromSeconds(1)); // ActionLinks:MaxLifetime; the approval lives 24 h

        var opened = await browser.GetAsync(PathOf(links.Approve));
        Assert.Equal(HttpStatusCode.Gone, opened.StatusCode);
        Assert.Contains("This link has expired", await opened.Content.ReadAsStringAsync());
        var (posted, html) = await ClickAsync(browser, links.Approve, "approve", openedPage: page);
        Assert.Equal(HttpStatusCode.Gone, posted.StatusCode);
        Assert.Contains("This link has expired", html);
        Assert.Equal("pending", await StateAsync(id));
        Assert.Single(await AuditAsync(id), e => e.Action == "approve_refused" && e.Reason == "link_expired" && e.Details == "via: link");
    }

    [Fact]
    public async Task A_link_never_outlives_its_approval()
    {
        var (id, links) = await SubmitAsync();
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        var token = await _app.Services.GetRequiredService<ActionLinkKeys>().VerifyAsync(new Uri(links.Approve).Segments[^1]);
        Assert.NotNull(token);
        Assert.True(token.ExpiresAt <= approval!.ExpiresAt);
        Assert.True(token.ExpiresAt <= _clock.GetUtcNow().AddHours(2));
    }

    [Fact]
    public async Task A_resubmitted_approval_supersedes_its_links()
    {
        await Workflow.SetAsync(_app, new { maxResubmissions = 1, resubmissionWindow = "1.00:00:00" });
        var (id, links) = await SubmitAsync("bob");
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes",
            new { reason = "attach the purchase order" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _app.Agent("acme").PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-7", amount = 420, purchaseOrder = "PO-7" } })).StatusCode);

        var opened = await browser.GetAsync(PathOf(links.Approve));
        Assert.Equal(HttpStatusCode.Conflict, opened.StatusCode);
        Assert.Contains("out of date", await opened.Content.ReadAsStringAsync());
        var (posted, html) = await ClickAsync(browser, links.Approve, "approve", openedPage: page);
        Assert.Equal(HttpStatusCode.Conflict, posted.StatusCode);
        Assert.Contains("resubmitted (now version 2)", html);
        Assert.Equal("pending", await StateAsync(id));
        Assert.Single(await AuditAsync(id), e => e.Action == "approve_refused" && e.Reason == "link_superseded");
    }

    [Fact]
    public async Task A_removed_approvers_link_is_refused_and_audited()
    {
        var (id, links) = await SubmitAsync("bob");
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();
        await Workflow.SetAsync(_app, new { approvers = new[] { "alice" } });

        var (posted, html) = await ClickAsync(browser, links.Approve, "approve", openedPage: page);

        Assert.Equal(HttpStatusCode.Forbidden, posted.StatusCode);
        Assert.Contains("no longer lets you decide", html);
        Assert.Equal("pending", await StateAsync(id));
        var refused = Assert.Single(await AuditAsync(id), e => e.Action == "approve_refused");
        Assert.Equal("user:bob", refused.Actor);
        Assert.Equal("not_an_approver", refused.Reason);
        Assert.Equal("via: link", refused.Details);
    }

    [Fact]
    public async Task A_locked_account_cannot_use_its_link()
    {
        var (id, links) = await SubmitAsync("bob");
        using var browser = Browser();
        var page = await (await browser.GetAsync(PathOf(links.Approve))).Content.ReadAsStringAsync();
        await using (var scope = _app.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>();
            var bob = await users.FindByNameAsync("bob");
            await users.SetLockoutEnabledAsync(bob!, true);
            await users.SetLockoutEndDateAsync(bob!, DateTimeOffset.MaxValue);
        }

        var (posted, _) = await ClickAsync(browser, links.Approve, "approve", openedPage: page);

        Assert.Equal(HttpStatusCode.Forbidden, posted.StatusCode);
        Assert.Equal("pending", await StateAsync(id));
        Assert.Single(await AuditAsync(id), e => e.Action == "approve_refused" && e.Reason == "account_unavailable");
    }

    [Fact]
    public async Task A_step_up_rule_sends_people_to_the_portal_and_refuses_a_link_post()
    {
        var published = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent("""
            version: v1
            default: require_human
            rules:
              - id: payments-sign-in
                when:
                  topic: finance.payment.execute
                decision: require_human
                stepUp: true
            """, Encoding.UTF8, "application/yaml"));
        Assert.True(published.IsSuccessStatusCode, await published.Content.ReadAsStringAsync());
        var (id, links) = await SubmitAsync();

        Assert.True(links.SignInRequired);
        Assert.Equal(BaseUrl + $"approvals/{id}?decide=approve", links.Approve);
        Assert.DoesNotContain("/a/", links.Reject);

        // A link minted anyway (or before the rule said stepUp) shows the way to the portal, and its POST is refused.
        var keys = _app.Services.GetRequiredService<ActionLinkKeys>();
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        var (kid, _) = await keys.CurrentAsync("acme");
        var token = await keys.SignAsync(new ActionLinkToken(kid, "acme", id, approval!.JobHash, "alice", Verdict.Approve,
            _clock.GetUtcNow().AddHours(1), "00112233445566778899aabbccddeeff"));
        using var browser = Browser();
        var opened = await browser.GetAsync("/a/" + token);
        var openedHtml = await opened.Content.ReadAsStringAsync();
        Assert.Contains("Sign in to decide", openedHtml);
        Assert.DoesNotContain("data-testid=\"link-approve\"", openedHtml);

        var (_, ordinary) = await SubmitAsync(tenant: "globex", approver: "gina");
        var page = await (await browser.GetAsync(PathOf(ordinary.Approve))).Content.ReadAsStringAsync();
        var (posted, _) = await ClickAsync(browser, BaseUrl + "a/" + token, "approve", openedPage: page);
        Assert.Equal(HttpStatusCode.Forbidden, posted.StatusCode);
        Assert.Equal("pending", await StateAsync(id));
        Assert.Single(await AuditAsync(id), e => e.Action == "approve_refused" && e.Reason == "sign_in_required");
    }

    [Fact]
    public async Task Nobody_but_an_eligible_approver_gets_links()
    {
        var (id, _) = await SubmitAsync();
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        Assert.Null(await Links.ForApproverAsync(approval!, "carol"));  // escalation only, level not reached
        Assert.Null(await Links.ForApproverAsync(approval!, "oscar"));  // on-call
        Assert.Null(await Links.ForApproverAsync(approval!, "gina"));   // another tenant's approver
        Assert.NotNull(await Links.ForApproverAsync(approval!, "bob"));
    }

    [Fact]
    public async Task An_away_approvers_delegate_gets_links_and_decides_for_them_via_link()
    {
        var (id, _) = await SubmitAsync();
        var approval = await _app.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        Assert.Null(await Links.ForApproverAsync(approval!, "carol"));
        var away = await _app.Account("alice").PutAsJsonAsync("/api/v1/me/delegation",
            new { delegateTo = "carol", until = _clock.GetUtcNow().AddDays(2) });
        Assert.True(away.IsSuccessStatusCode, await away.Content.ReadAsStringAsync());

        var links = await Links.ForApproverAsync(approval!, "carol");
        Assert.NotNull(links);
        using var browser = Browser();
        var (response, html) = await ClickAsync(browser, links.Approve, "approve", "for alice while she is out");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("approved", await StateAsync(id));
        var decided = Assert.Single(await AuditAsync(id), e => e.Action == "approved");
        Assert.Equal("user:carol", decided.Actor);
        Assert.Equal("via: link; for: alice", decided.Details);
    }

    [Fact]
    public async Task A_key_rotation_keeps_the_links_already_sent_until_the_next_one()
    {
        var (_, first) = await SubmitAsync();
        var keys = _app.Services.GetRequiredService<ActionLinkKeys>();
        var token = new Uri(first.Approve).Segments[^1];
        Assert.NotNull(await keys.VerifyAsync(token));

        var rotated = await keys.RotateAsync("acme");
        Assert.NotNull(await keys.VerifyAsync(token)); // the previous key still verifies
        var (_, second) = await SubmitAsync();
        var newer = await keys.VerifyAsync(new Uri(second.Approve).Segments[^1]);
        Assert.Equal(rotated, newer!.KeyId);

        await keys.RotateAsync("acme");
        Assert.Null(await keys.VerifyAsync(token)); // two rotations on: gone
        Assert.NotNull(await keys.VerifyAsync(new Uri(second.Approve).Segments[^1]));
    }
}
