using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Migration;

/// <summary>
/// A tenant's work in flight moves from one deployment (embedded Garnet, its own SQLite and key ring) to another
/// (Debian's redis-server, its own SQLite and key ring) and goes on there as it would have at the source.
/// </summary>
public sealed class MigrationTests : IAsyncLifetime
{
    private const string Ndjson = "application/x-ndjson";
    private static readonly DateTimeOffset Start = DateTimeOffset.UtcNow;
    private readonly FakeTimeProvider _sourceClock = new(Start);
    private readonly FakeTimeProvider _destinationClock = new(Start);
    private TestApp _source = null!;
    private TestApp? _destination;

    public async Task InitializeAsync()
    {
        _source = await TestApp.StartAsync(_sourceClock);
        if (await TestServers.RedisAsync() is { } redis)
        {
            _destination = await TestApp.StartAsync(_destinationClock, redis: redis);
        }
    }

    public async Task DisposeAsync()
    {
        await _source.DisposeAsync();
        if (_destination is not null)
        {
            await _destination.DisposeAsync();
        }
    }

    private TestApp Destination
    {
        get
        {
            Skip.If(_destination is null, "redis-server is needed for the destination: apt-get install -y redis-server");
            return _destination!;
        }
    }

    private void Advance(TimeSpan by)
    {
        _sourceClock.Advance(by);
        _destinationClock.Advance(by);
    }

    [SkippableFact]
    public async Task Imported_approvals_are_approved_expired_and_escalated_at_the_destination_as_at_the_source()
    {
        var destination = Destination;
        var ada = _source.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            approvalTtl = "90m", sla = "1h", escalation = new[] { new { approvers = new[] { "carol" }, sla = "2h" } },
        })).StatusCode);
        // A policy version the destination has never seen: the approvals are bound to it.
        var policy = ReviewerPortal.Features.Policies.DemoPolicies.Default + "\n  - id: migration-marker\n    when: { topic: migration.marker }\n    decision: deny\n";
        var published = await ada.PutAsync("/api/v1/tenants/acme/policy", new StringContent(policy, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.OK, published.StatusCode);

        var agent = _source.Agent("acme");
        var a = (await agent.SubmitPayment(101, idempotencyKey: "pay-A")).Str("approvalId");
        var b = (await agent.SubmitPayment(102)).Str("approvalId");
        var c = (await agent.SubmitPayment(103)).Str("approvalId");
        var opened = await (await agent.PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech", documents = new[] { "passport" }, idempotencyKey = "kyc-1" })).Json();
        var caseId = opened.GetProperty("case").Str("id");

        var export = await ExportAsync(_source);
        AssertValidAgainstSchema(export);
        var imported = await ImportAsync(destination, export);
        Assert.Equal(1, imported.GetProperty("created").GetProperty("settings").GetInt32());
        Assert.Equal(1, imported.GetProperty("created").GetProperty("policies").GetInt32());
        Assert.Equal(3, imported.GetProperty("created").GetProperty("approvals").GetInt32());
        Assert.Equal(1, imported.GetProperty("created").GetProperty("cases").GetInt32());
        Assert.Empty(imported.GetProperty("errors").EnumerateArray());
        Assert.True(imported.GetProperty("complete").GetBoolean());

        // The same ids, hashes, snapshot, deadlines and next timer on both sides.
        foreach (var id in new[] { a, b, c })
        {
            var there = await Read(_source, id);
            var here = await Read(destination, id);
            foreach (var field in new[] { "id", "jobId", "jobHash", "policySnapshot", "expiresAt", "state", "submitter", "idempotencyKey" })
            {
                Assert.Equal(there.GetProperty(field).ToString(), here.GetProperty(field).ToString());
            }
            Assert.Equal(there.GetProperty("nextTimer").ToString(), here.GetProperty("nextTimer").ToString());
        }
        // The idempotency keys came along: a retry at the destination attaches to the same approval and case.
        Assert.Equal(a, (await destination.Agent("acme").SubmitPayment(101, idempotencyKey: "pay-A")).Str("approvalId"));
        var reopened = await (await destination.Agent("acme").PostAsJsonAsync("/api/v1/cases", new { subject = "Onboarding Initech", documents = new[] { "passport" }, idempotencyKey = "kyc-1" })).Json();
        Assert.Equal(caseId, reopened.GetProperty("case").Str("id"));

        // An agent waiting at the destination wakes on the decision made there.
        var waiting = destination.Agent("acme").GetAsync($"/api/v1/approvals/{a}/decision?waitSeconds=60");
        foreach (var app in new[] { _source, destination })
        {
            Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(a, new { reason = "invoice checked" })).StatusCode);
        }
        var woke = await (await waiting.WaitAsync(TimeSpan.FromSeconds(30))).Json();
        Assert.Equal("approved", woke.Str("state"));

        // The SLA runs out on both sides at the same moment: B and C escalate to carol.
        Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));
        await RunTimersAsync(_source);
        await RunTimersAsync(destination);
        foreach (var app in new[] { _source, destination })
        {
            Assert.Equal(1, (await Read(app, c)).GetProperty("escalationLevel").GetInt32());
            Assert.Equal(HttpStatusCode.OK, (await app.Account("carol").Approve(c, new { reason = "escalated and checked" })).StatusCode);
        }
        // The TTL (90 minutes) runs out for B.
        Advance(TimeSpan.FromMinutes(30));
        await RunTimersAsync(_source);
        await RunTimersAsync(destination);

        foreach (var (id, state) in new[] { (a, "approved"), (b, "expired"), (c, "approved") })
        {
            Assert.Equal(state, (await Read(_source, id)).Str("state"));
            Assert.Equal(state, (await Read(destination, id)).Str("state"));
            // The same audit after the move: the source's submit is the destination's import.
            var sourceActions = await ActionsAsync(_source, id);
            var destinationActions = await ActionsAsync(destination, id);
            Assert.Equal("submitted", sourceActions[0]);
            Assert.Equal("approval_imported", destinationActions[0]);
            Assert.Equal(sourceActions.Skip(1), destinationActions.Skip(1));
            Assert.Equal(ReceiptContent(await ReceiptAsync(_source, id)), ReceiptContent(await ReceiptAsync(destination, id)));
        }
        Assert.Equal(["submitted", "escalated", "approved"], await ActionsAsync(_source, c));
        Assert.Equal(["submitted", "escalated", "expired"], await ActionsAsync(_source, b));

        // Audited on both sides, with counts.
        Assert.Equal(1, await _source.AuditCountAsync(null, "tenant_exported"));
        Assert.Equal(1, await destination.AuditCountAsync(null, "tenant_imported"));
        var exported = await AuditAsync(_source, "action=tenant_exported");
        Assert.Contains("approvals 3, cases 1", exported[0].GetProperty("details").GetString());
        var importedEntry = await AuditAsync(destination, "action=tenant_imported");
        Assert.Contains("created: settings 1, policies 1, approvals 3, cases 1", importedEntry[0].GetProperty("details").GetString());
    }

    [SkippableFact]
    public async Task Importing_twice_creates_nothing_twice_and_an_approval_decided_at_the_destination_is_left_alone()
    {
        var destination = Destination;
        Assert.Equal(HttpStatusCode.OK, (await _source.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = "http://127.0.0.1:9/hook", secret = "dispatch-secret-0123456789" },
        })).StatusCode);
        var first = (await _source.Agent("acme").SubmitPayment(201)).Str("approvalId");
        var second = (await _source.Agent("acme").SubmitPayment(202)).Str("approvalId");
        var export = await ExportAsync(_source, includeSecrets: true);

        var once = await ImportAsync(destination, export);
        Assert.Equal(2, once.GetProperty("created").GetProperty("approvals").GetInt32());
        Assert.Equal(1, once.GetProperty("created").GetProperty("settings").GetInt32());
        Assert.Equal(HttpStatusCode.OK, (await destination.Account("alice").Reject(first, new { reason = "decided after the move" })).StatusCode);

        var twice = await ImportAsync(destination, export);
        Assert.Equal(new JsonObject { ["settings"] = 0, ["policies"] = 0, ["approvals"] = 0, ["cases"] = 0 }.ToJsonString(),
            twice.GetProperty("created").GetRawText());
        Assert.Equal(1, twice.GetProperty("unchanged").GetProperty("approvals").GetInt32());
        Assert.Equal(1, twice.GetProperty("unchanged").GetProperty("settings").GetInt32());
        var skipped = Assert.Single(twice.GetProperty("skipped").EnumerateArray());
        Assert.Equal(first, skipped.Str("id"));
        Assert.Equal("rejected", skipped.Str("state"));
        Assert.Equal("rejected", (await Read(destination, first)).Str("state"));
        Assert.Equal("pending", (await Read(destination, second)).Str("state"));
        Assert.Equal(1, await destination.AuditCountAsync(first, "approval_imported"));
        Assert.Equal(1, await destination.AuditCountAsync(second, "approval_imported"));
        Assert.Equal(2, await destination.AuditCountAsync(null, "tenant_imported"));
        var pending = await (await destination.Account("oscar").GetAsync("/api/v1/approvals?tenant=acme&state=pending")).Json();
        Assert.Equal([second], pending.GetProperty("items").EnumerateArray().Select(i => i.Str("id")));
    }

    [SkippableFact]
    public async Task An_invalid_line_is_reported_by_its_number_and_nothing_of_it_is_stored()
    {
        var destination = Destination;
        var good = (await _source.Agent("acme").SubmitPayment(301)).Str("approvalId");
        var altered = (await _source.Agent("acme").SubmitPayment(302)).Str("approvalId");
        var lines = (await ExportAsync(_source)).Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var at = lines.FindIndex(l => l.Contains(altered, StringComparison.Ordinal));
        lines[at] = lines[at].Replace("\"amount\":302", "\"amount\":30200", StringComparison.Ordinal); // the job hash no longer holds
        lines.Insert(at + 1, "{\"type\":\"approval\",\"approval\":"); // cut short
        lines.Insert(at + 2, "{\"type\":\"nonsense\"}");

        var result = await ImportAsync(destination, string.Join('\n', lines) + "\n");

        var errors = result.GetProperty("errors").EnumerateArray().ToList();
        Assert.Equal([at + 1, at + 2, at + 3], errors.Select(e => e.GetProperty("line").GetInt32()));
        Assert.Contains("jobHash", errors[0].Str("reason"));
        Assert.Equal(altered, errors[0].Str("id"));
        Assert.False(errors[1].TryGetProperty("id", out _), "a line with no id answers without one, not \"id\": null");
        Assert.False(result.GetProperty("complete").GetBoolean());
        Assert.Equal(HttpStatusCode.NotFound, (await destination.Account("oscar").GetAsync($"/api/v1/approvals/{altered}")).StatusCode);
        Assert.Equal(0, await destination.AuditCountAsync(altered, "approval_imported"));
        Assert.Equal("pending", (await Read(destination, good)).Str("state"));
    }

    [SkippableFact]
    public async Task Approvals_bound_to_a_policy_the_destination_lacks_are_imported_with_a_warning()
    {
        var destination = Destination;
        var policy = ReviewerPortal.Features.Policies.DemoPolicies.Default + "\n  - id: migration-marker\n    when: { topic: migration.marker }\n    decision: deny\n";
        Assert.Equal(HttpStatusCode.OK, (await _source.Account("ada").PutAsync("/api/v1/tenants/acme/policy",
            new StringContent(policy, Encoding.UTF8, "application/yaml"))).StatusCode);
        var submitted = await _source.Agent("acme").SubmitPayment(451);
        var withoutPolicies = (await ExportAsync(_source)).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => !l.StartsWith("{\"type\":\"policy\"", StringComparison.Ordinal));

        var result = await ImportAsync(destination, string.Join('\n', withoutPolicies));

        Assert.Equal(1, result.GetProperty("created").GetProperty("approvals").GetInt32());
        Assert.Contains(result.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains(submitted.Str("policySnapshot"), StringComparison.Ordinal));
        Assert.False(result.GetProperty("complete").GetBoolean()); // the trailer counts policies the file no longer holds
        var approve = await destination.Account("alice").Approve(submitted.Str("approvalId"));
        Assert.Equal(HttpStatusCode.Conflict, approve.StatusCode);
        Assert.Equal("snapshot_changed", (await approve.Json()).Str("code"));
    }

    [SkippableFact]
    public async Task An_export_imports_into_a_redis_cluster_every_script_in_the_tenants_slot()
    {
        var cluster = await TestServers.RedisClusterAsync();
        Skip.If(cluster is null, TestServers.RedisInstallHint);
        await using var destination = await TestApp.StartAsync(_destinationClock, redis: cluster);
        var agent = _source.Agent("acme");
        var pending = (await agent.SubmitPayment(801, idempotencyKey: "cluster-801")).Str("approvalId");
        var waiting = (await agent.SubmitPayment(802)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await _source.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{waiting}/request-changes",
            new { reason = "attach the PO" })).StatusCode);
        await agent.PostAsJsonAsync("/api/v1/cases", new { subject = "KYC", documents = new[] { "passport" }, idempotencyKey = "kyc-cluster" });

        var result = await ImportAsync(destination, await ExportAsync(_source));

        Assert.Equal(2, result.GetProperty("created").GetProperty("approvals").GetInt32());
        Assert.Equal(1, result.GetProperty("created").GetProperty("cases").GetInt32());
        Assert.Equal("changes_requested", (await Read(destination, waiting)).Str("state"));
        Assert.Equal(HttpStatusCode.OK, (await destination.Agent("acme").PostAsJsonAsync($"/api/v1/approvals/{waiting}/resubmit",
            new { payload = new { invoice = "INV-802", amount = 802, po = "PO-1" } })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await destination.Account("alice").Approve(pending)).StatusCode);
        Assert.Equal(pending, (await destination.Agent("acme").SubmitPayment(801, idempotencyKey: "cluster-801")).Str("approvalId"));
        var verify = await (await destination.Account("ada").GetAsync("/api/v1/audit/verify?tenant=acme")).Json();
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.GetRawText());
    }

    [SkippableFact]
    public async Task A_file_of_another_format_version_is_refused_whole()
    {
        var destination = Destination;
        var id = (await _source.Agent("acme").SubmitPayment(401)).Str("approvalId");
        var export = await ExportAsync(_source);
        var future = export.Replace("\"version\":1,", "\"version\":2,", StringComparison.Ordinal);

        var response = await destination.Account("ada").PostAsync("/api/v1/tenants/acme/import", new StringContent(future, Encoding.UTF8, Ndjson));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("version", out _));
        Assert.Equal(HttpStatusCode.NotFound, (await destination.Account("oscar").GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        Assert.Equal(0, await destination.AuditCountAsync(null, "tenant_imported"));
    }

    [SkippableFact]
    public async Task A_deadline_that_passed_during_the_move_fires_at_once_after_the_import_and_once()
    {
        var destination = Destination;
        var id = (await _source.Agent("acme").SubmitPayment(501)).Str("approvalId");
        var export = await ExportAsync(_source);
        _destinationClock.Advance(TimeSpan.FromHours(25)); // the move took longer than the approval's 24 h

        await ImportAsync(destination, export);
        // Nobody runs the timers by hand: the import wakes the timer service, and the waiting agent sees the expiry.
        var waited = await (await destination.Agent("acme").GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60")
            .WaitAsync(TimeSpan.FromSeconds(30))).Json();
        Assert.Equal("expired", waited.Str("state"));

        await RunTimersAsync(destination);
        await ImportAsync(destination, export);
        await RunTimersAsync(destination);
        Assert.Equal(1, await destination.AuditCountAsync(id, "expired"));
        Assert.Equal("expired", (await Read(destination, id)).Str("state"));
    }

    [SkippableFact]
    public async Task Only_an_admin_exports_or_imports_and_one_tenants_file_never_lands_in_another()
    {
        var destination = Destination;
        var id = (await _source.Agent("acme").SubmitPayment(601)).Str("approvalId");
        foreach (var token in new[] { "demo-alice-token", "demo-gina-token", "demo-oscar-token", "demo-acme-agent", "demo-globex-agent" })
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await _source.WithToken(token).GetAsync("/api/v1/tenants/acme/export")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await destination.WithToken(token).PostAsync("/api/v1/tenants/acme/import",
                new StringContent("{}", Encoding.UTF8, Ndjson))).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await _source.Account("ada").GetAsync("/api/v1/tenants/nosuch/export")).StatusCode);
        var export = await ExportAsync(_source);

        // acme's export into globex: refused whole.
        var refused = await destination.Account("ada").PostAsync("/api/v1/tenants/globex/import", new StringContent(export, Encoding.UTF8, Ndjson));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.True((await refused.Json()).GetProperty("errors").TryGetProperty("tenant", out _));
        // A globex header over acme's lines: every line naming acme is refused, none is stored under globex.
        var relabelled = export.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        relabelled[0] = relabelled[0].Replace("\"tenant\":\"acme\"", "\"tenant\":\"globex\"", StringComparison.Ordinal);
        var result = await ImportAsync(destination, string.Join('\n', relabelled), "globex");
        Assert.Equal(0, result.GetProperty("created").GetProperty("approvals").GetInt32());
        Assert.Contains(result.GetProperty("errors").EnumerateArray(), e => e.Str("reason").Contains("tenant 'acme'", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, (await destination.Account("gina").GetAsync($"/api/v1/approvals/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await destination.Account("oscar").GetAsync($"/api/v1/approvals/{id}")).StatusCode);
    }

    [Fact]
    public async Task The_export_is_valid_against_its_json_schema_and_leaves_secrets_out_unless_asked()
    {
        var ada = _source.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            dispatch = new { kind = "webhook", url = "http://127.0.0.1:9/hook", secret = "dispatch-secret-0123456789" },
        })).StatusCode);
        var id = (await _source.Agent("acme").SubmitPayment(701)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await _source.Account("alice").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes",
            new { reason = "attach the purchase order" })).StatusCode);
        var resubmitted = await _source.Agent("acme").PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit", new { payload = new { invoice = "INV-701", amount = 700 } });
        Assert.Equal(HttpStatusCode.OK, resubmitted.StatusCode);
        await _source.Agent("acme").SubmitPayment(702);
        await _source.Agent("acme").PostAsJsonAsync("/api/v1/cases", new { subject = "KYC", documents = new[] { "passport" } });

        var response = await ada.GetAsync("/api/v1/tenants/acme/export");
        Assert.Equal(Ndjson, response.Content.Headers.ContentType?.MediaType);
        var export = await response.Content.ReadAsStringAsync();
        AssertValidAgainstSchema(export);
        var lines = export.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal("header", lines[0].Str("type"));
        Assert.Equal("omitted", lines[0].Str("secrets"));
        var trailer = lines[^1];
        Assert.Equal(["dispatch.secret"], trailer.GetProperty("omittedSecrets").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(2, trailer.GetProperty("counts").GetProperty("approvals").GetInt32());
        Assert.Equal(lines.Count, trailer.GetProperty("lines").GetInt32());
        Assert.DoesNotContain("dispatch-secret-0123456789", export, StringComparison.Ordinal);
        Assert.DoesNotContain("dp1:", export, StringComparison.Ordinal);
        var lineage = lines.Single(l => l.Str("type") == "approval" && l.GetProperty("approval").Str("id") == id).GetProperty("approval").GetProperty("lineage");
        Assert.Equal(1, lineage.GetArrayLength());

        var withSecrets = await (await ada.GetAsync("/api/v1/tenants/acme/export?includeSecrets=true")).Content.ReadAsStringAsync();
        AssertValidAgainstSchema(withSecrets);
        Assert.Contains("\"secret\":\"dispatch-secret-0123456789\"", withSecrets, StringComparison.Ordinal);
        var audit = await AuditAsync(_source, "action=tenant_exported");
        Assert.Contains(audit, e => e.GetProperty("details").GetString()!.Contains("secrets included", StringComparison.Ordinal));
    }

    // ---------------------------------------------------------------- helpers

    [SkippableFact]
    public async Task Payload_fields_the_tenant_masks_stay_masked_in_an_export_unless_secrets_are_asked_for()
    {
        var destination = Destination;
        var ada = _source.Account("ada");
        Assert.Equal(HttpStatusCode.OK, (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { redactFields = new[] { "card.number" } })).StatusCode);
        var plain = (await _source.Agent("acme").SubmitPayment(801)).Str("approvalId");
        var submitted = await _source.Agent("acme").Submit(new
        {
            topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-802", amount = 802, card = new { number = "4111111111111111" } },
        });
        var carded = (await submitted.Json()).Str("approvalId");

        // Without secrets: the masked value is not in the file, the trailer says so, and the line cannot be imported
        // as it stands (its job hash is over the original), which the import explains.
        var masked = await ExportAsync(_source);
        AssertValidAgainstSchema(masked);
        Assert.DoesNotContain("4111111111111111", masked, StringComparison.Ordinal);
        var trailer = JsonDocument.Parse(masked.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Contains("payload.card.number", trailer.GetProperty("omittedSecrets").EnumerateArray().Select(e => e.GetString()));
        var first = await ImportAsync(destination, masked);
        var error = Assert.Single(first.GetProperty("errors").EnumerateArray());
        Assert.Equal(carded, error.Str("id"));
        Assert.Contains("includeSecrets=true", error.Str("reason"));
        Assert.Equal("pending", (await Read(destination, plain)).Str("state"));
        // The settings moved, masking included.
        var settings = await (await destination.Account("ada").GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(["card.number"], settings.GetProperty("redactFields").EnumerateArray().Select(e => e.GetString()));

        // With secrets: the original moves, with its hash, and is masked for people at the destination too.
        var whole = await ExportAsync(_source, includeSecrets: true);
        Assert.Contains("4111111111111111", whole, StringComparison.Ordinal);
        var second = await ImportAsync(destination, whole);
        Assert.Empty(second.GetProperty("errors").EnumerateArray());
        Assert.Equal((await Read(_source, carded)).Str("jobHash"), (await Read(destination, carded)).Str("jobHash"));
        Assert.DoesNotContain("4111111111111111", (await Read(destination, carded)).ToString(), StringComparison.Ordinal);
    }

    [SkippableFact]
    public async Task The_agents_trace_moves_with_the_approval()
    {
        var destination = Destination;
        const string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/jobs")
        {
            Content = JsonContent.Create(new { topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-901", amount = 901 } }),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-00f067aa0ba902b7-01");
        var id = (await (await _source.Agent("acme").SendAsync(request)).Json()).Str("approvalId");

        var export = await ExportAsync(_source);
        AssertValidAgainstSchema(export);
        Assert.Contains(traceId, export, StringComparison.Ordinal);
        Assert.Empty((await ImportAsync(destination, export)).GetProperty("errors").EnumerateArray());

        var imported = await destination.Services.GetRequiredService<IApprovalStore>().GetApprovalAsync("acme", id);
        Assert.Equal(traceId, imported!.TraceParent?.Split('-')[1]);
    }

    private static async Task<string> ExportAsync(TestApp app, bool includeSecrets = false)
    {
        var response = await app.Account("ada").GetAsync("/api/v1/tenants/acme/export" + (includeSecrets ? "?includeSecrets=true" : ""));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private static async Task<JsonElement> ImportAsync(TestApp app, string ndjson, string tenant = "acme")
    {
        var response = await app.Account("ada").PostAsync($"/api/v1/tenants/{tenant}/import", new StringContent(ndjson, Encoding.UTF8, Ndjson));
        var body = await response.Json();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body;
    }

    private static async Task<JsonElement> Read(TestApp app, string id)
    {
        var response = await app.Account("oscar").GetAsync($"/api/v1/approvals/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Json();
    }

    private static Task RunTimersAsync(TestApp app) => app.Services.GetRequiredService<ExpiryService>().RunDueAsync(CancellationToken.None);

    private static async Task<List<JsonElement>> AuditAsync(TestApp app, string query) =>
        [.. (await (await app.Account("ada").GetAsync($"/api/v1/audit?tenant=acme&{query}")).Json()).GetProperty("items").EnumerateArray()];

    private static async Task<List<string>> ActionsAsync(TestApp app, string id) =>
        [.. (await AuditAsync(app, $"approvalId={id}&limit=100")).OrderBy(e => e.GetProperty("sequence").GetInt64()).Select(e => e.Str("action"))];

    private static async Task<JsonElement> ReceiptAsync(TestApp app, string id)
    {
        var response = await app.Account("oscar").GetAsync($"/api/v1/approvals/{id}/receipt");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse((await response.Json()).Str("payload")).RootElement;
    }

    /// <summary>What a receipt says about the decision (not which deployment's key signed it or its audit head).</summary>
    private static string ReceiptContent(JsonElement receipt)
    {
        var content = JsonNode.Parse(receipt.GetRawText())!.AsObject();
        foreach (var deploymentSpecific in new[] { "kid", "auditSequence", "auditHash" })
        {
            content.Remove(deploymentSpecific);
        }
        return content.ToJsonString();
    }

    internal static void AssertValidAgainstSchema(string ndjson)
    {
        var schema = JsonSchema.FromFile(Path.Combine(TestPaths.Repo, "docs", "schemas", "inflight-export.v1.schema.json"));
        var options = new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
        var number = 0;
        foreach (var line in ndjson.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            number++;
            var result = schema.Evaluate(JsonNode.Parse(line), options);
            Assert.True(result.IsValid, $"line {number} is not valid against the schema:\n" + string.Join("\n",
                result.Details.Where(d => d.Errors is { Count: > 0 })
                    .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}): {e.Key} {e.Value}"))) + "\n" + line);
        }
        Assert.True(number >= 3);
    }
}
