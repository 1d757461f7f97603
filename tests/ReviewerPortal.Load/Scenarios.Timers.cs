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
    // ------------------------------------------------------------------ timers

    /// <summary>
    /// N approvals with a 30 s SLA: a reminder at +10 s, escalation to a backup level at +30 s, the timeout at +40 s.
    /// The app is killed (SIGKILL) at +20 s and restarted 15 s later, so the escalations fall due while it is down.
    /// Afterwards the audit history must hold exactly one reminder, one escalation and one timeout per approval; the
    /// report gives how late each kind fired after its due time.
    /// </summary>
    private async Task<Report> TimersAsync()
    {
        var report = new Report("timers");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis);
        var ada = app.Client("demo-ada-token");
        var put = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            sla = "00:00:30", reminderInterval = "00:00:10", maxReminders = 1, timeoutOutcome = "reject",
            escalation = new[] { new { approvers = new[] { "carol" }, sla = "00:00:10" } },
        });
        put.EnsureSuccessStatusCode();
        var agent = app.Client("demo-acme-agent");
        var ids = new ConcurrentBag<string>();
        var submit = new Recorder("submit (202)");
        var t0 = DateTimeOffset.UtcNow;
        var firstSubmit = Stopwatch.StartNew();
        using (var progress = new Progress("submitting").Start(TimeSpan.FromSeconds(options.Timers / 500.0)))
        {
            await Parallel.ForAsync(0, options.Timers, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            {
                var response = await submit.TimeAsync(() => agent.PostAsJsonAsync("/api/v1/jobs", Payment(i)));
                if (response.StatusCode == HttpStatusCode.Accepted)
                {
                    ids.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString()!);
                    progress.Tick();
                }
                else
                {
                    submit.Error();
                }
            });
        }
        report.Facts["submitted"] = $"{ids.Count} in {firstSubmit.Elapsed.TotalSeconds:F1} s";

        // Down from +20 s to +35 s after the first submit: every escalation (+30 s) falls due while no app runs.
        await Task.Delay(TimeSpan.FromSeconds(20) - firstSubmit.Elapsed is { } wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero);
        app.Kill();
        report.Facts["app killed (SIGKILL)"] = $"at +{firstSubmit.Elapsed.TotalSeconds:F1} s";
        await Task.Delay(TimeSpan.FromSeconds(35) - firstSubmit.Elapsed is { } down && down > TimeSpan.Zero ? down : TimeSpan.Zero);
        await app.RestartAsync();
        var restarted = DateTimeOffset.UtcNow;
        report.Facts["app restarted"] = $"at +{firstSubmit.Elapsed.TotalSeconds:F1} s";

        // Wait (bounded) until every approval has timed out.
        var oscar = app.Client("demo-oscar-token");
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromMinutes(3) && await CountAsync(oscar, "timed_out") < ids.Count)
        {
            await Task.Delay(500);
        }
        var created = new ConcurrentDictionary<string, DateTimeOffset>();
        await Parallel.ForEachAsync(ids, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (id, _) =>
        {
            var approval = await agent.GetFromJsonAsync<JsonElement>($"/api/v1/approvals/{id}");
            created[id] = approval.GetProperty("createdAt").GetDateTimeOffset();
        });
        var steps = new (string Action, TimeSpan Due, string Target)[]
        {
            ("reminder_sent", TimeSpan.FromSeconds(10), "p99 ≤ 1 s"),
            ("escalated", TimeSpan.FromSeconds(30), "due while down: once, after the restart"),
            ("timed_out", TimeSpan.FromSeconds(40), "due during the catch-up"),
        };
        long missing = 0, doubled = 0, afterRestart = 0;
        var last = t0;
        foreach (var (action, due, target) in steps)
        {
            var fired = await EntriesAsync(oscar, action);
            var lag = new Recorder($"{action} lag after due");
            foreach (var id in ids)
            {
                var mine = fired.GetValueOrDefault(id) ?? [];
                missing += mine.Count == 0 ? 1 : 0;
                doubled += mine.Count > 1 ? mine.Count - 1 : 0;
                afterRestart += mine.Count(t => t >= restarted);
                last = mine.Count > 0 && mine.Max() > last ? mine.Max() : last;
                if (mine.Count > 0 && created.TryGetValue(id, out var at))
                {
                    var late = mine[0] - (at + due);
                    lag.Add(late > TimeSpan.Zero ? late : TimeSpan.Zero);
                }
            }
            report.Rows.Add(lag.ToRow(TimeSpan.FromSeconds(1), target));
        }
        report.Rows.Add(submit.ToRow(firstSubmit.Elapsed));
        report.Facts["last step fired"] = $"at +{(last - t0).TotalSeconds:F1} s ({afterRestart} steps after the restart, " +
                                          $"{afterRestart / Math.Max(0.001, (last - restarted).TotalSeconds):F0}/s)";
        report.Facts["steps missing"] = missing.ToString(CultureInfo.InvariantCulture);
        report.Facts["steps fired twice"] = doubled.ToString(CultureInfo.InvariantCulture);
        report.Facts["verdict"] = missing == 0 && doubled == 0 ? "PASS" : "FAIL";
        report.Facts["app memory (RSS)"] = Rss(app.Pid);
        return report;
    }

    private static async Task<int> CountAsync(HttpClient reader, string action) =>
        (await EntriesAsync(reader, action)).Values.Sum(v => v.Count);

    /// <summary>Every audit entry of one action in acme, by approval id (read through the audit API, paged).</summary>
    private static async Task<Dictionary<string, List<DateTimeOffset>>> EntriesAsync(HttpClient reader, string action)
    {
        var found = new Dictionary<string, List<DateTimeOffset>>();
        long? after = null;
        do
        {
            var page = await reader.GetFromJsonAsync<JsonElement>(
                $"/api/v1/audit?tenant=acme&action={action}&limit=500{(after is null ? "" : $"&after={after}")}");
            foreach (var e in page.GetProperty("items").EnumerateArray())
            {
                var id = e.GetProperty("approvalId").GetString()!;
                (found.TryGetValue(id, out var list) ? list : found[id] = []).Add(e.GetProperty("at").GetDateTimeOffset());
            }
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Number ? page.GetProperty("nextAfter").GetInt64() : null;
        }
        while (after is not null);
        return found;
    }
}
