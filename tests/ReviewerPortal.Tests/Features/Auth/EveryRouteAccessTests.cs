using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>
/// Every operation of the OpenAPI document, called by every kind of caller: nobody, a forged token, the tenant's agent,
/// another tenant's agent, the tenant's approver, another tenant's approver, on-call and admin. Each answer is the one
/// documented below; a route added without a row here fails the test, so no route ships unchecked.
/// </summary>
public sealed class EveryRouteAccessTests
{
    // The callers, in the order of each row's expectations.
    private static readonly string?[] Tokens =
        [null, "rp_forged_0123456789abcdef0123456789abcdef", "demo-acme-agent", "demo-globex-agent", "demo-alice-token", "demo-gina-token", "demo-oscar-token", "demo-ada-token"];

    private static readonly string[] Names = ["nobody", "forged", "acme agent", "globex agent", "alice (acme approver)", "gina (globex approver)", "oscar (on-call)", "ada (admin)"];

    // Per caller: "ok" = past authentication and authorisation (2xx, or a 4xx about the request itself such as 400/409),
    // else the exact status. Every path parameter names an object of tenant acme.
    private static readonly Dictionary<string, string[]> Expected = new()
    {
        ["GET /healthz"] = ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
        ["POST /api/v1/jobs"] = ["401", "401", "ok", "ok", "403", "403", "403", "403"],
        ["GET /api/v1/jobs/{id}"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["POST /api/v1/jobs/{id}/result"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["POST /api/v1/side-effects"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["GET /api/v1/stats"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/approvals"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/approvals/{id}"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/approvals/{id}/decision"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["POST /api/v1/approvals/{id}/approve"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        ["POST /api/v1/approvals/{id}/reject"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        // Bulk answers 200 to any account: each item carries its own status (gina: not_found; oscar, ada: refused).
        ["POST /api/v1/approvals/bulk"] = ["401", "401", "403", "403", "ok", "ok", "ok", "ok"],
        ["POST /api/v1/approvals/{id}/edit-and-approve"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        ["POST /api/v1/approvals/{id}/approve-always"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        ["POST /api/v1/approvals/{id}/reevaluate"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        ["POST /api/v1/approvals/{id}/request-changes"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        ["POST /api/v1/approvals/{id}/resubmit"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["POST /api/v1/approvals/{id}/withdraw"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["GET /api/v1/approvals/{id}/receipt"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/queue-stats"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/notifications"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/keys"] = ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
        ["POST /api/v1/tenants/{tenant}/keys/rotate"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/tenants/{tenant}/agent-keys"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["POST /api/v1/tenants/{tenant}/agent-keys"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["DELETE /api/v1/tenants/{tenant}/agent-keys/{id}"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/tenants"] = ["401", "401", "ok", "ok", "ok", "ok", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/settings"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["PUT /api/v1/tenants/{tenant}/settings"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/tenants/{tenant}/export"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["POST /api/v1/tenants/{tenant}/import"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/tenants/{tenant}/policy"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["PUT /api/v1/tenants/{tenant}/policy"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/tenants/{tenant}/policy/history"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/policy/versions/{snapshot}"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/tenants/{tenant}/standing-approvals"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["DELETE /api/v1/tenants/{tenant}/standing-approvals/{ruleId}"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["GET /api/v1/audit"] = ["401", "401", "403", "403", "ok", "404", "ok", "ok"],
        ["GET /api/v1/audit/verify"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["POST /api/v1/cases"] = ["401", "401", "ok", "ok", "403", "403", "403", "403"],
        ["GET /api/v1/cases"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["GET /api/v1/cases/{id}"] = ["401", "401", "ok", "404", "ok", "404", "ok", "ok"],
        ["POST /api/v1/cases/{id}/documents"] = ["401", "401", "ok", "404", "403", "403", "403", "403"],
        ["POST /api/v1/cases/{id}/decision"] = ["401", "401", "403", "403", "ok", "404", "403", "403"],
        // Slack's clicks carry no bearer: whoever calls, an unsigned click is a 401 (see SlackTests for signed ones).
        ["POST /api/v1/integrations/slack/interactions"] = ["401", "401", "401", "401", "401", "401", "401", "401"],
        ["GET /api/v1/me/delegation"] = ["401", "401", "403", "403", "ok", "ok", "ok", "ok"],
        ["PUT /api/v1/me/delegation"] = ["401", "401", "403", "403", "ok", "ok", "403", "403"],
        ["DELETE /api/v1/me/delegation"] = ["401", "401", "403", "403", "ok", "ok", "ok", "ok"],
        ["GET /api/v1/delegations"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
        ["DELETE /api/v1/delegations/{user}"] = ["401", "401", "403", "403", "403", "403", "403", "ok"],
    };

    [Fact]
    public async Task Every_route_answers_every_kind_of_caller_as_documented()
    {
        await using var app = await TestApp.StartAsync();
        var document = await (await app.CreateClient().GetAsync("/openapi/v1.json")).Json();
        var operations = document.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => $"{m.Name.ToUpperInvariant()} {p.Name}"))
            .ToList();
        Assert.Empty(operations.Except(Expected.Keys)); // a new route needs its row
        Assert.Empty(Expected.Keys.Except(operations)); // and a row its route

        var failures = new StringBuilder();
        var matrix = new StringBuilder();
        foreach (var operation in operations.Order(StringComparer.Ordinal))
        {
            matrix.Append($"[\"{operation}\"] = [");
            for (var i = 0; i < Tokens.Length; i++)
            {
                // Fresh objects per call: one caller's withdraw or approve must not change what the next one meets.
                var target = await Target.CreateAsync(app, standing: operation.Contains("{ruleId}", StringComparison.Ordinal));
                var response = await CallAsync(app, Tokens[i], operation, target);
                var actual = Classify(response.StatusCode);
                matrix.Append($"\"{actual}\"{(i < Tokens.Length - 1 ? ", " : "")}");
                if (actual != Expected[operation][i])
                {
                    failures.AppendLine($"{operation} as {Names[i]}: expected {Expected[operation][i]}, got {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
                if (actual is "401" or "403" or "404")
                {
                    Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                }
            }
            matrix.AppendLine("],");
        }
        Assert.True(failures.Length == 0, failures + "\nActual matrix:\n" + matrix);
    }

    /// <summary>
    /// The routes outside the API (not in the OpenAPI document): the probes answer everyone; <c>/metrics</c> answers
    /// no bearer of an agent key or API token (only loopback or the scrape token, see MetricsTests), and the test
    /// server's requests have no loopback address; <c>/diagnostics/runtime</c> is off by default (RuntimeDiagnosticsTests).
    /// </summary>
    private static readonly Dictionary<string, string[]> Operational = new()
    {
        ["GET /healthz/live"] = ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
        ["GET /healthz/ready"] = ["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"],
        ["GET /metrics"] = ["404", "404", "404", "404", "404", "404", "404", "404"],
        ["GET /diagnostics/runtime"] = ["404", "404", "404", "404", "404", "404", "404", "404"], // off by default; loopback only when on
    };

    [Fact]
    public async Task Every_operational_route_answers_every_kind_of_caller_as_documented()
    {
        await using var app = await TestApp.StartAsync();
        var failures = new StringBuilder();
        foreach (var (operation, expected) in Operational)
        {
            for (var i = 0; i < Tokens.Length; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, operation[(operation.IndexOf(' ') + 1)..]);
                if (Tokens[i] is { } token)
                {
                    request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
                }
                var response = await app.CreateClient().SendAsync(request);
                if (Classify(response.StatusCode) != expected[i])
                {
                    failures.AppendLine($"{operation} as {Names[i]}: expected {expected[i]}, got {(int)response.StatusCode}");
                }
            }
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    private static string Classify(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized => "401",
        HttpStatusCode.Forbidden => "403",
        HttpStatusCode.NotFound => "404",
        >= HttpStatusCode.InternalServerError => "5xx:" + (int)status,
        _ => "ok",
    };

    private static async Task<HttpResponseMessage> CallAsync(TestApp app, string? token, string operation, Target target)
    {
        var (method, template) = (operation[..operation.IndexOf(' ')], operation[(operation.IndexOf(' ') + 1)..]);
        if (template == "/api/v1/delegations/{user}")
        {
            // Something for the admin to end: alice away, carol deciding for her.
            var away = await app.Account("alice").PutAsJsonAsync("/api/v1/me/delegation", new { delegateTo = "carol", until = DateTimeOffset.UtcNow.AddDays(1) });
            Assert.True(away.IsSuccessStatusCode, await away.Content.ReadAsStringAsync());
        }
        var path = template
            .Replace("{user}", "alice")
            .Replace("{tenant}", "acme")
            .Replace("{snapshot}", target.Snapshot)
            .Replace("{ruleId}", target.StandingRuleId)
            .Replace("{id}", template.StartsWith("/api/v1/jobs", StringComparison.Ordinal) ? target.JobId
                : template.StartsWith("/api/v1/cases", StringComparison.Ordinal) ? target.CaseId
                : template.Contains("agent-keys", StringComparison.Ordinal) ? target.KeyId
                : target.ApprovalId);
        var query = template switch
        {
            "/api/v1/approvals" or "/api/v1/stats" or "/api/v1/audit" or "/api/v1/audit/verify" or "/api/v1/cases" => "?tenant=acme",
            "/api/v1/approvals/{id}/decision" => "?waitSeconds=0",
            _ => "",
        };
        using var request = new HttpRequestMessage(new HttpMethod(method), path + query);
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        request.Content = Body(method, template, target);
        var client = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        return await client.SendAsync(request);
    }

    private static HttpContent? Body(string method, string template, Target target) => (method, template) switch
    {
        ("GET" or "DELETE", _) => null,
        ("PUT", "/api/v1/tenants/{tenant}/policy") => new StringContent("version: 1\nrules: []\n", Encoding.UTF8, "application/yaml"),
        (_, "/api/v1/jobs") => JsonContent.Create(new { topic = "knowledge.read", env = "production", payload = new { q = 1 } }),
        (_, "/api/v1/side-effects") => JsonContent.Create(new { approvalId = target.ApprovalId, actionId = "a1", result = new { ok = true } }),
        (_, "/api/v1/jobs/{id}/result") => JsonContent.Create(new { status = "completed" }),
        (_, "/api/v1/cases") => JsonContent.Create(new { subject = "Onboarding", documents = new[] { "passport" } }),
        (_, "/api/v1/cases/{id}/documents") => JsonContent.Create(new { documents = new { files = new[] { "a.pdf" } } }),
        (_, "/api/v1/cases/{id}/decision") => JsonContent.Create(new { decision = "approve", reason = "fine" }),
        (_, "/api/v1/approvals/{id}/edit-and-approve") => JsonContent.Create(new { payload = new { invoice = "INV-3", amount = 3 } }),
        // Over the 24h cap: past authorisation it is a 400, and no standing approval lets the next targets' payments through.
        (_, "/api/v1/approvals/{id}/approve-always") => JsonContent.Create(new { @for = "25h" }),
        (_, "/api/v1/approvals/{id}/resubmit") => JsonContent.Create(new { payload = new { invoice = "INV-2", amount = 2 } }),
        (_, "/api/v1/tenants/{tenant}/agent-keys") => JsonContent.Create(new { name = "matrix bot" }),
        (_, "/api/v1/tenants/{tenant}/settings") => JsonContent.Create(new { displayName = "ACME" }),
        (_, "/api/v1/approvals/bulk") => JsonContent.Create(new { verdict = "approve", reason = "matrix", items = new[] { new { id = target.ApprovalId } } }),
        (_, "/api/v1/me/delegation") => JsonContent.Create(new { delegateTo = "carol", until = DateTimeOffset.UtcNow.AddDays(1) }),
        _ => JsonContent.Create(new { reason = "matrix" }),
    };

    /// <summary>A pending approval (its job), an open case, the policy snapshot, an agent key and (when asked) a standing approval of tenant acme.</summary>
    private sealed record Target(string ApprovalId, string JobId, string CaseId, string Snapshot, string KeyId, string StandingRuleId = "standing-none")
    {
        public static async Task<Target> CreateAsync(TestApp app, bool standing = false)
        {
            string? ruleId = null;
            if (standing)
            {
                // On a topic of its own (the policy's default parks it), so the payments below still wait for a human.
                var notify = await (await app.Agent("acme").Submit(new { topic = $"matrix.standing{Random.Shared.Next(1, 1_000_000)}", env = "production", payload = new { to = "x" } })).Json();
                var granted = await (await app.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{notify.Str("approvalId")}/approve-always", new { @for = "1h" })).Json();
                ruleId = granted.GetProperty("standing").Str("ruleId");
            }
            var approval = await app.Agent("acme").SubmitPayment(Random.Shared.Next(1, 1_000_000));
            var opened = await (await app.Agent("acme").PostAsJsonAsync("/api/v1/cases",
                new { subject = "Onboarding", documents = new[] { "passport" } })).Json();
            var key = await (await app.Account("ada").PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = "target bot" })).Json();
            return new Target(approval.Str("approvalId"), approval.Str("jobId"), opened.GetProperty("case").Str("id"),
                approval.Str("policySnapshot"), key.GetProperty("id").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                StandingRuleId = ruleId ?? "standing-none",
            };
        }
    }
}
