using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Observability;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Observability;

/// <summary>
/// <c>/metrics</c>: the portal's figures in Prometheus text format, anonymous from loopback only; any other address
/// needs <c>Metrics:ScrapeToken</c>.
/// </summary>
public sealed partial class MetricsTests
{
    private static HttpRequestMessage Scrape(string from, string? token = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Add(ClientAddresses.Header, from);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return request;
    }

    /// <summary>The value of the first sample of <paramref name="metric"/> carrying every label given (name="value").</summary>
    internal static double? Sample(string text, string metric, params string[] labels)
    {
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            {
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    [Fact]
    public async Task Loopback_scrape_shows_submits_decisions_pending_and_every_control_plane_counter_by_tenant()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add);
        var agent = app.Agent("acme");
        var first = (await agent.SubmitPayment(1)).Str("approvalId");
        await agent.SubmitPayment(2);
        var second = (await agent.SubmitPayment(3)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(first)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(first)).StatusCode); // already_approved
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Reject(second)).StatusCode);
        // Decisions take no lock (their script is fenced); a re-evaluation does, so the lock wait is measured.
        var third = (await agent.SubmitPayment(4)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{third}/reevaluate", new { reason = "check" })).StatusCode);
        await app.Services.GetRequiredService<OperationsSnapshot>().RefreshAsync(); // the gauges' periodic read, now

        var response = await app.CreateClient().SendAsync(Scrape("127.0.0.1"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, Sample(text, "reviewerportal_approvals_submitted_total", "tenant=\"acme\"", "decision=\"require_human\""));
        Assert.Equal(1, Sample(text, "reviewerportal_approvals_decided_total", "tenant=\"acme\"", "outcome=\"approved\""));
        Assert.Equal(1, Sample(text, "reviewerportal_approvals_decided_total", "tenant=\"acme\"", "outcome=\"rejected\""));
        Assert.Equal(1, Sample(text, "reviewerportal_approvals_age_at_decision_seconds_count", "tenant=\"acme\"", "outcome=\"approved\""));
        Assert.Equal(1, Sample(text, "reviewerportal_approvals_age_at_decision_seconds_count", "tenant=\"acme\"", "outcome=\"rejected\""));
        Assert.Equal(2, Sample(text, "reviewerportal_approvals_pending", "tenant=\"acme\""));
        Assert.Equal(0, Sample(text, "reviewerportal_approvals_pending", "tenant=\"globex\""));
        Assert.NotNull(Sample(text, "reviewerportal_policy_evaluation_seconds_count", "tenant=\"acme\""));
        Assert.NotNull(Sample(text, "reviewerportal_locks_wait_seconds_count", "result=\"acquired\""));
        Assert.Equal(0, Sample(text, "reviewerportal_audit_outbox_depth", "tenant=\"acme\""));
        // Every counter of /api/v1/stats, by name: one added to Counters.All appears here with no more work.
        foreach (var name in Counters.All)
        {
            Assert.NotNull(Sample(text, "reviewerportal_control_plane_total", "tenant=\"acme\"", $"counter=\"{name}\""));
        }
        Assert.Equal(1, Sample(text, "reviewerportal_control_plane_total", "tenant=\"acme\"", "counter=\"already_approved\""));
        Assert.DoesNotContain(first, text); // no approval id is ever a label
    }

    [Fact]
    public async Task A_scrape_from_another_address_without_the_token_or_with_a_wrong_one_gets_nothing()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add,
            settings: new Dictionary<string, string?> { ["Metrics:ScrapeToken"] = "scrape-0123456789abcdef" });
        await app.Agent("acme").SubmitPayment();
        var http = app.CreateClient();

        var anonymous = await http.SendAsync(Scrape("203.0.113.7"));
        var wrong = await http.SendAsync(Scrape("203.0.113.7", "scrape-0123456789abcdeX"));
        var agentKey = await http.SendAsync(Scrape("203.0.113.7", "demo-acme-agent"));
        var right = await http.SendAsync(Scrape("203.0.113.7", "scrape-0123456789abcdef"));

        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.DoesNotContain("reviewerportal_", await anonymous.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.DoesNotContain("reviewerportal_", await wrong.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, agentKey.StatusCode);
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);
        Assert.Contains("reviewerportal_approvals_submitted_total", await right.Content.ReadAsStringAsync());
        // A private address is not loopback either.
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Scrape("10.0.0.8"))).StatusCode);
    }

    [Fact]
    public async Task Without_a_scrape_token_metrics_do_not_exist_for_other_addresses()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add);
        var http = app.CreateClient();

        var remote = await http.SendAsync(Scrape("198.51.100.20"));
        var guessed = await http.SendAsync(Scrape("198.51.100.20", "anything"));
        var local = await http.SendAsync(Scrape("::1"));

        Assert.Equal(HttpStatusCode.NotFound, remote.StatusCode);
        Assert.DoesNotContain("reviewerportal_", await remote.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, guessed.StatusCode);
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
    }
}
