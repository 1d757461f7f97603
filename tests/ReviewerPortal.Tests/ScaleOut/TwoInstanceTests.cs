using System.Net;
using System.Text.Json;
using ReviewerPortal.Client;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.ScaleOut;

/// <summary>
/// Two instances (A and B) on one real 3-master Redis Cluster and one PostgreSQL database behave as one product:
/// one audit history, wake-ups everywhere, one decision per approval however the calls are spread.
/// </summary>
public sealed class TwoInstanceTests : IAsyncLifetime
{
    private TestApp _a = null!;
    private TestApp _b = null!;

    public async Task InitializeAsync()
    {
        var cluster = await TestServers.RedisClusterAsync();
        var pg = await TestServers.PostgresAsync();
        if (cluster is null || pg is null)
        {
            return;
        }
        var prefix = $"s{Guid.NewGuid():N}:";
        // Started together, as a fleet would: they seed one set of tenants, accounts and policies.
        var started = await Task.WhenAll(
            Task.Run(() => TestApp.StartAsync(redis: cluster, postgres: pg, keyPrefix: prefix, kestrel: true)),
            Task.Run(() => TestApp.StartAsync(redis: cluster, postgres: pg, keyPrefix: prefix, kestrel: true)));
        (_a, _b) = (started[0], started[1]);
    }

    public async Task DisposeAsync()
    {
        foreach (var app in new[] { _a, _b })
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }
    }

    private void SkipWithoutServers() =>
        Skip.If(_a is null, "redis-server (cluster) and postgresql are needed: apt-get install -y redis-server postgresql");

    private static JobSubmission Payment(int n) =>
        new("finance.payment.execute", "production", new { invoice = $"INV-{n}", amount = n }, Priority: "high");

    [SkippableFact]
    public async Task Submitted_on_A_and_approved_on_B_wakes_waiters_on_both_and_both_read_one_audit_history()
    {
        SkipWithoutServers();
        await using var agentOnA = new ReviewerPortalClient(new Uri(_a.BaseUrl), "demo-acme-agent");
        await using var agentOnB = new ReviewerPortalClient(new Uri(_b.BaseUrl), "demo-acme-agent");
        await agentOnB.ConnectAsync(); // B's hub
        var submitted = await agentOnA.SubmitAsync(Payment(1));
        var id = submitted.ApprovalId!;
        var longPollOnA = _a.Agent("acme").GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");
        var hubOnB = agentOnB.WaitForDecisionAsync(id, TimeSpan.FromSeconds(30));
        var started = System.Diagnostics.Stopwatch.StartNew();

        Assert.Equal(HttpStatusCode.OK, (await _b.Account("alice").Approve(id)).StatusCode);

        Assert.Equal("approved", (await (await longPollOnA).Json()).Str("state"));
        Assert.Equal("approved", (await hubOnB)!.State);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(20), "both woke on the decision, not on their timeouts");
        var throughA = await AuditOfAsync(_a, id);
        var throughB = await AuditOfAsync(_b, id);
        Assert.Equal(["submitted", "approved"], throughA.Select(e => e.Str("action")));
        Assert.Equal(throughA.Select(e => e.Str("hash")), throughB.Select(e => e.Str("hash")));
        Assert.Equal(throughA.Select(e => e.GetProperty("sequence").GetInt64()), throughB.Select(e => e.GetProperty("sequence").GetInt64()));
    }

    [SkippableFact]
    public async Task Two_hundred_approvals_decided_concurrently_across_A_and_B_leave_one_intact_chain_with_one_decision_each()
    {
        SkipWithoutServers();
        var apps = new[] { _a, _b };
        var ids = await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
            (await apps[i % 2].Agent("acme").SubmitPayment(1000 + i)).Str("approvalId")));

        // Each approval decided on both instances at once, by two approvers: one decision stands.
        var decisions = await Task.WhenAll(ids.SelectMany((id, i) => new[]
        {
            apps[i % 2].Account("alice").Approve(id),
            apps[(i + 1) % 2].Account("bob").Approve(id),
        }));
        Assert.All(decisions, d => Assert.True(d.StatusCode == HttpStatusCode.OK, d.StatusCode.ToString()));

        var verifyA = await (await _a.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        var verifyB = await (await _b.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verifyA.GetProperty("intact").GetBoolean(), verifyA.GetRawText());
        Assert.True(verifyB.GetProperty("intact").GetBoolean(), verifyB.GetRawText());
        Assert.Equal(verifyA.GetProperty("verifiedEntries").GetInt32(), verifyB.GetProperty("verifiedEntries").GetInt32());
        foreach (var id in ids)
        {
            Assert.Equal(1, await _a.AuditCountAsync(id, "approved"));
        }
    }

    [SkippableFact]
    public async Task A_reviewer_signed_in_on_A_reads_the_queue_on_B_without_signing_in_again()
    {
        SkipWithoutServers();
        // A browser: its own cookie jar, signing in through A's login form (anti-forgery token and all).
        var jar = new CookieContainer();
        using (var browser = new HttpClient(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false }) { BaseAddress = new Uri(_a.BaseUrl) })
        {
            var form = await browser.GetStringAsync("/account/login");
            var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;
            Assert.NotEmpty(token);
            var signIn = await browser.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["_handler"] = "login",
                ["__RequestVerificationToken"] = token,
                ["Input.UserName"] = "alice",
                ["Input.Password"] = "demo-alice",
            }));
            Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        }
        var auth = jar.GetCookies(new Uri(_a.BaseUrl))["rp.auth"];
        Assert.NotNull(auth);
        var cookie = $"rp.auth={auth.Value}";

        using var onB = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = new Uri(_b.BaseUrl) };
        var request = new HttpRequestMessage(HttpMethod.Get, "/queue/acme");
        request.Headers.Add("Cookie", cookie);
        var page = await onB.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("data-testid=\"tenant-select\"", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Without the cookie, B sends the browser to sign in.
        var anonymous = await onB.GetAsync("/queue/acme");
        Assert.Contains("account/login", anonymous.Headers.Location?.ToString() ?? "");
    }

    private static async Task<List<JsonElement>> AuditOfAsync(TestApp app, string id)
    {
        var page = await (await app.Account("ada").GetAsync($"/api/v1/audit?approvalId={id}&limit=50")).Json();
        return [.. page.GetProperty("items").EnumerateArray().OrderBy(e => e.GetProperty("sequence").GetInt64())];
    }
}
