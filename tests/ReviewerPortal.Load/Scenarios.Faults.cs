using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Load;

public sealed partial class Scenarios
{
    // ------------------------------------------------------------------ faults

    private async Task<Report> FaultsAsync()
    {
        var report = new Report("faults");
        if (_garnet is null)
        {
            report.Facts["note"] = "with --redis, only the app is killed (the tool does not kill a server it did not start)";
        }
        var accepted = new ConcurrentDictionary<string, Accepted>(); // idempotency key → approval (acme)
        var acceptedWebhook = new ConcurrentDictionary<string, Accepted>(); // the same for globex
        // A short webhook timeout, so the sink's late answers (past it) happen within the run.
        await using var app = await AppProcess.StartAsync(options.Repo, _redis,
            environment: new Dictionary<string, string>
            {
                ["Dispatch__WebhookTimeout"] = "00:00:01",
                // The webhook sink is on 127.0.0.1 over plain http: allowed for this run only (the outbound rules refuse it by default).
                ["Outbound__AllowHttp"] = "true",
                ["Outbound__AllowedHosts__0"] = "127.0.0.1",
            });
        // acme's approved jobs go to a Redis sink, so a double publish would show as a job id twice in the list;
        // globex's to a webhook that refuses some and answers some too late, so a delivery again must say replay.
        var sinkKey = "faults-" + Guid.NewGuid().ToString("N")[..8];
        await using var webhook = WebhookSink.Start();
        using (var ada = app.Client("demo-ada-token"))
        {
            (await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new { dispatch = new { kind = "redis", key = sinkKey } })).EnsureSuccessStatusCode();
            (await ada.PutAsJsonAsync("/api/v1/tenants/globex/settings",
                new { dispatch = new { kind = "webhook", url = webhook.Url, secret = "faults-scenario-webhook-secret" } })).EnsureSuccessStatusCode();
        }
        foreach (var round in _garnet is null ? new[] { "app" } : ["app", "redis"])
        {
            using var stop = new CancellationTokenSource(options.Duration);
            var killAt = TimeSpan.FromSeconds(Random.Shared.Next(5, Math.Max(6, (int)options.Duration.TotalSeconds - 10)));
            using var progress = new Progress($"faults cycles, round {round}").Start(options.Duration);
            var load = Task.WhenAll(
                RetryingCycleAsync(app, "acme", "demo-alice-token", options.Agents, accepted, progress, stop.Token),
                RetryingCycleAsync(app, "globex", "demo-gina-token", Math.Max(1, options.Agents / 4), acceptedWebhook, progress, stop.Token));
            await Task.Delay(killAt);
            var down = Stopwatch.StartNew();
            if (round == "app")
            {
                app.Kill();
                await app.RestartAsync();
            }
            else
            {
                var port = _garnet!.Port;
                System.Diagnostics.Process.GetProcessById(_garnet.ProcessId).Kill(); // SIGKILL the server
                _garnet = null;
                await StartGarnetAsync(port); // same port, same append-only log
            }
            report.Facts[$"round {round}: killed at"] = $"{killAt.TotalSeconds:F0} s, back after {down.Elapsed.TotalMilliseconds:F0} ms";
            await load;
        }

        // Transitions whose audit commit died with the app wait in the audit outbox until the drain writes them (after
        // Approvals:AuditOutboxGrace): count only once it is empty, and say how long that took.
        var auditDrain = await AuditOutbox.WaitDrainedAsync(_redis, "acme", "globex");
        report.Facts["audit outbox drained after the load"] = $"{auditDrain.TotalSeconds:F1} s";

        // Account for every 202.
        var reader = app.Client("demo-ada-token");
        var agent = app.Client("demo-acme-agent");
        int lost = 0, pending = 0, decided = 0, unaudited = 0, duplicated = 0;
        var decisions = new Dictionary<string, int>();
        var repairs = new Dictionary<string, int> { ["release_restored"] = 0, ["state_regressed"] = 0 };
        long? after = null;
        do
        {
            var page = await reader.GetFromJsonAsync<JsonElement>($"/api/v1/audit?tenant=acme&limit=500{(after is null ? "" : "&after=" + after)}");
            foreach (var e in page.GetProperty("items").EnumerateArray())
            {
                var action = e.GetProperty("action").GetString();
                if (action is "approved" or "rejected" or "expired" && e.GetProperty("approvalId").GetString() is { } id)
                {
                    decisions[id] = decisions.GetValueOrDefault(id) + 1;
                }
                if (action is not null && repairs.ContainsKey(action))
                {
                    repairs[action]++;
                }
            }
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Number ? page.GetProperty("nextAfter").GetInt64() : null;
        }
        while (after is not null);
        var decidedJobs = new List<Accepted>();
        foreach (var one in accepted.Values.DistinctBy(a => a.ApprovalId))
        {
            var id = one.ApprovalId;
            var response = await agent.GetAsync($"/api/v1/approvals/{id}");
            if (!response.IsSuccessStatusCode)
            {
                lost++;
                continue;
            }
            var state = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString();
            if (state == "pending")
            {
                pending++;
                continue;
            }
            decided++;
            decidedJobs.Add(one);
            var rows = decisions.GetValueOrDefault(id);
            if (rows == 0) { unaudited++; }
            if (rows > 1) { duplicated++; }
        }
        report.Facts["accepted (202)"] = accepted.Values.Select(a => a.ApprovalId).Distinct().Count().ToString(CultureInfo.InvariantCulture);
        report.Facts["decided / pending"] = $"{decided} / {pending}";
        report.Facts["lost"] = lost.ToString(CultureInfo.InvariantCulture);
        report.Facts["duplicated decisions"] = duplicated.ToString(CultureInfo.InvariantCulture);
        report.Facts["unaudited decisions"] = unaudited.ToString(CultureInfo.InvariantCulture);
        // What the reconciler found after the restarts: releases whose dispatch entry Redis lost (put back), states that
        // went backwards (flagged).
        report.Facts["reconciler (acme)"] = string.Join(", ", repairs.Select(r => $"{r.Key} {r.Value}"));
        // Give the dispatcher a moment to drain its outbox, then count the sink.
        var store = await StoreAsync();
        var published = new Dictionary<string, int>();
        var drain = Stopwatch.StartNew();
        for (var last = -1; drain.Elapsed < TimeSpan.FromMinutes(2); await Task.Delay(500))
        {
            published = (await store.SinkAsync("acme", sinkKey)).GroupBy(m => m).ToDictionary(g => g.Key, g => g.Count());
            if (published.Count >= decided || (published.Count == last && drain.Elapsed > TimeSpan.FromSeconds(45)))
            {
                break; // all out, or no progress for a while (a killed holder's publish lock lapses after WebhookTimeout × 2 + 30 s)
            }
            last = published.Count;
        }
        report.Facts["dispatch drained after the load"] = $"{drain.Elapsed.TotalSeconds:F1} s";
        var dispatchedTwice = published.Count(p => p.Value > 1);
        report.Facts["published to the sink"] = $"{published.Count} jobs, {dispatchedTwice} published twice, {decided - published.Count} not (yet) published";
        if (decidedJobs.Where(j => !published.ContainsKey(j.JobId)).Take(5).ToList() is { Count: > 0 } unpublished)
        {
            await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(_redis);
            report.Facts["not (yet) published, where they are"] =
                string.Join("; ", await Task.WhenAll(unpublished.Select(j => DispatchStateAsync(redis.GetDatabase(), "acme", j))));
        }

        // The webhook: every approved globex job received (answered 2xx), and no second delivery without replay: true.
        var globexAgent = app.Client("demo-globex-agent");
        var approvedJobs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var a in acceptedWebhook.Values.DistinctBy(a => a.ApprovalId))
        {
            var response = await globexAgent.GetAsync($"/api/v1/approvals/{a.ApprovalId}");
            if (response.IsSuccessStatusCode
                && (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString() == "approved")
            {
                approvedJobs.Add(a.JobId);
            }
        }
        var wait = Stopwatch.StartNew();
        for (var last = -1; wait.Elapsed < TimeSpan.FromMinutes(2); await Task.Delay(500))
        {
            var received = webhook.Accepted().Count(approvedJobs.Contains);
            if (received >= approvedJobs.Count || (received == last && wait.Elapsed > TimeSpan.FromSeconds(45)))
            {
                break; // all in, or no progress for a while (a killed holder's publish lock lapses after 32 s)
            }
            last = received;
        }
        var missing = approvedJobs.Count(j => !webhook.Accepted().Contains(j));
        var (jobs, deliveries, replays, unmarked) = webhook.Tally();
        report.Facts["webhook (globex)"] = $"{approvedJobs.Count} approved, {jobs} jobs in {deliveries} deliveries ({replays} marked replay), " +
                                          $"drained after {wait.Elapsed.TotalSeconds:F1} s";
        report.Facts["webhook duplicates with replay: false"] = unmarked.ToString(CultureInfo.InvariantCulture);
        report.Facts["webhook missing"] = missing.ToString(CultureInfo.InvariantCulture);
        report.Facts["verdict"] = lost + duplicated + unaudited + dispatchedTwice + unmarked + missing == 0 && published.Count == decided
            ? "PASS (0 lost, 0 duplicated, 0 unaudited, 0 double publishes, 0 unmarked webhook duplicates, 0 webhook jobs missing)" : "FAIL";
        return report;
    }

    private sealed record Accepted(string ApprovalId, string JobId);

    /// <summary>For the report: a job the sink has not received, as its record and the dispatcher's sets show it.</summary>
    private static async Task<string> DispatchStateAsync(StackExchange.Redis.IDatabase db, string tenant, Accepted job)
    {
        var fields = (await db.HashGetAllAsync(RedisKeys.Approval(tenant, job.ApprovalId))).ToDictionary(e => (string)e.Name!, e => (string?)e.Value);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        string Due(double? score) => score is { } at ? $"due in {(at - now) / 1000:F0} s" : "absent";
        var member = DispatchMember.ForApproval(job.ApprovalId);
        var counts = string.Join(", ", new[] { "dispatch", "dispatchCount", "deliveryAttempt", "deliveryFailures", "dispatchErrors" }
            .Select(name => $"{name} {fields.GetValueOrDefault(name) ?? "-"}"));
        return $"{job.ApprovalId}: state {fields.GetValueOrDefault("state")}, {counts}, " +
               $"outbox {Due(await db.SortedSetScoreAsync(RedisKeys.DispatchOutbox(tenant), member))}, " +
               $"unacked {Due(await db.SortedSetScoreAsync(RedisKeys.Unacknowledged(tenant), member))}";
    }

    /// <summary>The cycle load with retries, as a careful agent runs it: the same idempotency key until a 202, approve until 200.</summary>
    private async Task RetryingCycleAsync(AppProcess app, string tenant, string reviewerToken, int agents,
        ConcurrentDictionary<string, Accepted> accepted, Progress progress, CancellationToken stop)
    {
        var agent = app.Client($"demo-{tenant}-agent");
        var reviewer = app.Client(reviewerToken);
        await Task.WhenAll(Enumerable.Range(0, agents).Select(async a =>
        {
            var n = a * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                var body = Payment(n++);
                var key = (string)body.GetType().GetProperty("idempotencyKey")!.GetValue(body)!;
                string? id = null;
                for (var attempt = 0; id is null && attempt < 200; attempt++)
                {
                    try
                    {
                        var response = await agent.PostAsJsonAsync("/api/v1/jobs", body);
                        if (response.StatusCode == HttpStatusCode.Accepted)
                        {
                            var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
                            id = answer.GetProperty("approvalId").GetString();
                            accepted[key] = new Accepted(id!, answer.GetProperty("jobId").GetString()!);
                        }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { }
                    if (id is null) { await Task.Delay(100); }
                }
                for (var attempt = 0; id is not null && attempt < 200; attempt++)
                {
                    try
                    {
                        var response = await reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "faults" });
                        if (response.IsSuccessStatusCode) { progress.Tick(); break; }
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { }
                    await Task.Delay(100);
                }
            }
        }));
    }
}
