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

/// <summary>The load and fault scenarios. Every request loop is bounded in time and count and stops by itself.</summary>
public sealed partial class Scenarios(LoadOptions options)
{
    private EmbeddedGarnet? _garnet;
    private string _redis = "";
    private string _garnetData = "";

    public async Task<int> RunAsync()
    {
        _redis = options.Redis ?? await StartGarnetAsync();
        Console.WriteLine($"Redis: {_redis}{(options.Redis is null ? " (embedded Garnet, append-only log on)" : "")}");
        var failed = false;
        try
        {
            var runs = options.Scenario == "all" ? ["baseline", "fanout", "queue", "faults", "timers"] : new[] { options.Scenario };
            foreach (var scenario in runs)
            {
                var report = scenario switch
                {
                    "cycle" => await CycleAsync(new Report("cycle")),
                    "baseline" => await BaselineAsync(),
                    "queue" => await QueueAsync(),
                    "fanout" => await FanoutAsync(),
                    "timers" => await TimersAsync(),
                    "garnet-kill" => await new GarnetKillScenario(options).RunAsync(),
                    "scaleout" => await new ScaleOutScenario(options).RunAsync(),
                    "flood" => await new FloodScenario(options, _redis).RunAsync(),
                    "portal" => await PortalAsync(),
                    _ => await FaultsAsync(),
                };
                report.Print();
                await report.SaveAsync(options.Out);
                failed |= report.Facts.GetValueOrDefault("verdict") == "FAIL";
            }
        }
        finally
        {
            if (_garnet is not null)
            {
                await _garnet.DisposeAsync();
            }
        }
        return failed ? 1 : 0;
    }

    private async Task<string> StartGarnetAsync(int? port = null)
    {
        _garnetData = _garnetData.Length > 0 ? _garnetData : Path.Combine(Path.GetTempPath(), "rp-load", "garnet-" + Guid.NewGuid().ToString("N"));
        _garnet = await EmbeddedGarnet.StartAsync(new EmbeddedGarnetOptions
        {
            DataPath = _garnetData,
            Port = port,
            // Per-command counts for the figures of commands per cycle (baseline, cycle, portal); off elsewhere.
            CommandStats = options.Scenario is "baseline" or "cycle" or "portal",
        }, NullLogger.Instance, CancellationToken.None);
        return _garnet.Endpoint;
    }

    private static object Payment(int n) => new
    {
        topic = "finance.payment.execute",
        env = "production",
        priority = "high",
        payload = new { invoice = $"INV-{n}", amount = n },
        idempotencyKey = $"load-{Guid.NewGuid():N}",
    };

    // ------------------------------------------------------------------ cycle

    /// <param name="given">The app to drive (baseline, portal); null starts one for this run.</param>
    /// <param name="warmUp">Run the unmeasured warm-up first (off where the caller warmed the app up already).</param>
    /// <param name="sampler">Samples the app's CPU, Redis commands and runtime figures around the measured window.</param>
    private async Task<Report> CycleAsync(Report report, AppProcess? given = null, bool warmUp = true, CycleSampler? sampler = null)
    {
        await using var owned = given is null ? await AppProcess.StartAsync(options.Repo, _redis) : null;
        var app = given ?? owned!;
        var agentHttp = app.Client("demo-acme-agent");
        var reviewers = new[] { app.Client("demo-alice-token"), app.Client("demo-bob-token") };
        var submit = new Recorder("submit (202)");
        var approve = new Recorder("approve call");
        var toAgent = new Recorder("decision → agent (long-poll)");
        var toHubAgent = new Recorder("decision → agent (hub)");
        await using var hubClient = new ReviewerPortal.Client.ReviewerPortalClient(new Uri(app.BaseUrl), "demo-acme-agent");
        await hubClient.ConnectAsync();
        var viaHub = new ConcurrentDictionary<string, bool>();
        var cycle = new Recorder("full cycle");
        if (warmUp)
        {
            await WarmUpAsync(app);
        }
        var commandsBefore = await CommandStatsAsync();
        if (sampler is not null)
        {
            await sampler.StartAsync();
        }
        var approvedAt = new ConcurrentDictionary<string, long>();
        var wokeAt = new ConcurrentDictionary<string, long>();
        var queue = Channel.CreateUnbounded<string>();
        using var stop = new CancellationTokenSource(options.Duration);
        using var progress = new Progress("cycles").Start(options.Duration);
        var started = Stopwatch.StartNew();

        var agents = Enumerable.Range(0, options.Agents).Select(async a =>
        {
            var n = a * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                var begin = Stopwatch.GetTimestamp();
                try
                {
                    var response = await submit.TimeAsync(() => agentHttp.PostAsJsonAsync("/api/v1/jobs", Payment(n++)));
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        submit.Error();
                        continue;
                    }
                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString()!;
                    string? state;
                    if (a % 2 == 1)
                    {
                        // Half the agents wait on the SignalR hub, half on the long-poll endpoint.
                        viaHub[id] = true;
                        var hubWait = hubClient.WaitForDecisionAsync(id, TimeSpan.FromSeconds(60));
                        await queue.Writer.WriteAsync(id);
                        var approval = await hubWait;
                        wokeAt[id] = Stopwatch.GetTimestamp();
                        state = approval?.State;
                    }
                    else
                    {
                        var wait = agentHttp.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60");
                        await queue.Writer.WriteAsync(id);
                        var decided = await wait;
                        wokeAt[id] = Stopwatch.GetTimestamp();
                        state = (await decided.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("state").GetString();
                    }
                    if (state != "approved")
                    {
                        toAgent.Error();
                        continue;
                    }
                    cycle.Add(Stopwatch.GetElapsedTime(begin));
                    progress.Tick();
                }
                catch (HttpRequestException)
                {
                    submit.Error();
                }
            }
        }).ToList();

        var deciders = Enumerable.Range(0, options.Reviewers).Select(async r =>
        {
            var client = reviewers[r % reviewers.Length];
            await foreach (var id in queue.Reader.ReadAllAsync())
            {
                try
                {
                    var response = await approve.TimeAsync(() => client.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "load" }));
                    approvedAt[id] = Stopwatch.GetTimestamp();
                    if (!response.IsSuccessStatusCode)
                    {
                        approve.Error();
                    }
                }
                catch (HttpRequestException)
                {
                    approve.Error();
                }
            }
        }).ToList();

        await Task.WhenAll(agents);
        queue.Writer.Complete();
        await Task.WhenAll(deciders);
        var elapsed = started.Elapsed;
        if (sampler is not null)
        {
            await sampler.StopAsync(cycle.Count);
        }
        var beforeReturn = 0;
        foreach (var (id, woke) in wokeAt)
        {
            if (approvedAt.TryGetValue(id, out var approved))
            {
                // The agent often wakes before the approver's own response is back: that counts as 0.
                beforeReturn += woke <= approved ? 1 : 0;
                (viaHub.ContainsKey(id) ? toHubAgent : toAgent).Add(woke > approved ? Stopwatch.GetElapsedTime(approved, woke) : TimeSpan.Zero);
            }
        }
        report.Facts["agent woke before the approve call returned"] = $"{beforeReturn} of {toAgent.Count + toHubAgent.Count}";
        report.Rows.Add(submit.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(approve.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(toAgent.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(toHubAgent.ToRow(elapsed, "p99 ≤ 10 ms"));
        report.Rows.Add(cycle.ToRow(elapsed));
        report.Facts["cycles/s"] = (cycle.Count / elapsed.TotalSeconds).ToString("F1", CultureInfo.InvariantCulture);
        var commandsAfter = await CommandStatsAsync();
        if (commandsBefore.Count > 0 && commandsAfter.Count > 0 && cycle.Count > 0)
        {
            var delta = commandsAfter.ToDictionary(c => c.Key, c => c.Value - commandsBefore.GetValueOrDefault(c.Key)).Where(c => c.Value > 0).ToList();
            report.Facts["Redis commands per cycle"] = (delta.Sum(c => c.Value) / (double)cycle.Count).ToString("F1", CultureInfo.InvariantCulture) + " (" +
                string.Join(", ", delta.OrderByDescending(c => c.Value).Take(8).Select(c => $"{c.Key} {c.Value / (double)cycle.Count:F1}")) + ")";
        }
        report.Facts["agents / reviewers"] = $"{options.Agents} / {options.Reviewers}";
        report.Facts["app memory (RSS)"] = Rss(app.Pid);
        return report;
    }

    /// <summary>Unmeasured cycles first, so the figures are of a warm process (tiered JIT done), not of its start-up.</summary>
    private async Task WarmUpAsync(AppProcess app)
    {
        var agent = app.Client("demo-acme-agent");
        var reviewer = app.Client("demo-bob-token");
        using var stop = new CancellationTokenSource(options.Warmup);
        using var progress = new Progress("warm-up").Start(options.Warmup);
        await Task.WhenAll(Enumerable.Range(0, options.Agents).Select(async a =>
        {
            var n = 900_000_000 + a * 1_000_000;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var response = await agent.PostAsJsonAsync("/api/v1/jobs", Payment(n++));
                    var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("approvalId").GetString();
                    var wait = agent.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=10");
                    await reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "warm-up" });
                    await wait;
                    progress.Tick();
                }
                catch (Exception ex) when (ex is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException)
                {
                }
            }
        }));
    }

    /// <summary>The server's per-command call counts (INFO commandstats); empty where the server does not keep them.</summary>
    private Task<Dictionary<string, long>> CommandStatsAsync() => CommandStatsAsync(_redis);

    /// <summary>The per-command call counts of the server at <paramref name="redis"/> (INFO commandstats); empty where it does not keep them.</summary>
    internal static async Task<Dictionary<string, long>> CommandStatsAsync(string redis)
    {
        try
        {
            await using var mux = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis + ",allowAdmin=true");
            var info = await mux.GetServer(mux.GetEndPoints()[0]).InfoAsync("commandstats");
            var counts = new Dictionary<string, long>();
            foreach (var (key, value) in info.SelectMany(g => g))
            {
                // cmdstat_get:calls=12,usec=…
                var calls = value.Split(',').FirstOrDefault(p => p.StartsWith("calls=", StringComparison.Ordinal));
                if (key.StartsWith("cmdstat_", StringComparison.Ordinal) && calls is not null)
                {
                    counts[key["cmdstat_".Length..]] = long.Parse(calls["calls=".Length..], CultureInfo.InvariantCulture);
                }
            }
            return counts;
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or FormatException)
        {
            return [];
        }
    }

    // ------------------------------------------------------------------ queue

    private async Task<Report> QueueAsync()
    {
        var report = new Report("queue");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis);
        var seeded = await SeedPendingAsync("acme", options.Pending);
        report.Facts["seeded pending (acme)"] = seeded.ToString(CultureInfo.InvariantCulture);
        var alice = app.Client("demo-alice-token");
        var page = new Recorder("first queue page (50, API)");
        var stats = new Recorder("age histogram (API)");
        var deep = new Recorder("page at rank 90,000 (portal path)");
        for (var i = 0; i < 50; i++)
        {
            var p = await page.TimeAsync(() => alice.GetAsync("/api/v1/approvals?tenant=acme&state=pending&limit=50"));
            var s = await stats.TimeAsync(() => alice.GetAsync("/api/v1/tenants/acme/queue-stats"));
            if (!p.IsSuccessStatusCode) { page.Error(); }
            if (!s.IsSuccessStatusCode) { stats.Error(); }
        }
        var store = await StoreAsync();
        for (var i = 0; i < 50; i++)
        {
            await deep.TimeAsync(() => store.PendingRangeAsync("acme", Math.Max(0, options.Pending - 10_000), 50));
        }
        var total = TimeSpan.FromSeconds(1);
        report.Rows.Add(page.ToRow(total, "≤ 100 ms"));
        report.Rows.Add(stats.ToRow(total, "≤ 100 ms"));
        report.Rows.Add(deep.ToRow(total));
        var body = await (await alice.GetAsync("/api/v1/tenants/acme/queue-stats")).Content.ReadAsStringAsync();
        report.Facts["queue-stats"] = body;
        report.Facts["app memory (RSS)"] = Rss(app.Pid);
        return report;
    }

    private async Task<RedisApprovalStore> StoreAsync()
    {
        var connection = new RedisConnection(Options.Create(new RedisOptions { Configuration = _redis }), Options.Create(new StorageOptions()),
            new HostingEnvironment { ContentRootPath = Path.GetTempPath() }, NullLoggerFactory.Instance);
        await connection.StartAsync(CancellationToken.None);
        return new RedisApprovalStore(connection);
    }

    /// <summary>Writes pending approvals straight into the store's layout (seeding, not measured).</summary>
    private async Task<int> SeedPendingAsync(string tenant, int count)
    {
        var store = await StoreAsync();
        var now = DateTimeOffset.UtcNow;
        using var payload = JsonDocument.Parse("""{"invoice":"INV-seed","amount":1}""");
        using var progress = new Progress("seeding").Start(TimeSpan.FromSeconds(count / 5000.0));
        var done = 0;
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            var created = now.AddMilliseconds(-(count - i) * 500L); // spread over the last ~14 h of ages
            var approval = new Approval
            {
                Id = ApprovalIds.NewApprovalId(created),
                Tenant = tenant,
                JobId = ApprovalIds.NewJobId(created),
                State = ApprovalStates.Pending,
                Job = new JobRequest("finance.payment.execute", "production", null, "normal", payload.RootElement),
                Submitter = "seed",
                PolicySnapshot = new string('0', 64),
                JobHash = new string('0', 64),
                CreatedAt = created,
                ExpiresAt = now.AddDays(2),
            };
            await store.CreateApprovalAsync(approval, TimeSpan.FromDays(3), TimeSpan.FromDays(1), "{}");
            Interlocked.Increment(ref done);
            progress.Tick();
        });
        return done;
    }

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

    // ------------------------------------------------------------------ fanout

    private async Task<Report> FanoutAsync()
    {
        var report = new Report("fanout");
        await using var app = await AppProcess.StartAsync(options.Repo, _redis);
        var agent = app.Client("demo-acme-agent");
        var alice = app.Client("demo-alice-token");
        var lastSeen = new Recorder($"decision → last of {options.Subscribers} subscribers");
        var each = new Recorder("decision → each subscriber");
        for (var round = 0; round < 10; round++)
        {
            var id = (await (await agent.PostAsJsonAsync("/api/v1/jobs", Payment(round))).Content.ReadFromJsonAsync<JsonElement>())
                .GetProperty("approvalId").GetString()!;
            var clients = Enumerable.Range(0, options.Subscribers).Select(_ => app.Client("demo-oscar-token")).ToList();
            long decidedAt = 0;
            var waits = clients.Select(async c =>
            {
                await c.GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=60");
                var now = Stopwatch.GetTimestamp();
                each.Add(Stopwatch.GetElapsedTime(Interlocked.Read(ref decidedAt), now));
                return now;
            }).ToList();
            await Task.Delay(1000); // let every long-poll register
            Interlocked.Exchange(ref decidedAt, Stopwatch.GetTimestamp());
            await alice.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", new { reason = "fanout" });
            var wakes = await Task.WhenAll(waits);
            lastSeen.Add(Stopwatch.GetElapsedTime(decidedAt, wakes.Max()));
            clients.ForEach(c => c.Dispose());
        }
        report.Rows.Add(lastSeen.ToRow(TimeSpan.FromSeconds(1), "p99 ≤ 250 ms"));
        report.Rows.Add(each.ToRow(TimeSpan.FromSeconds(1)));
        report.Facts["subscribers"] = $"{options.Subscribers} long-polls on one approval (the agent hub comes with the dispatch issue)";
        return report;
    }

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
            }
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Number ? page.GetProperty("nextAfter").GetInt64() : null;
        }
        while (after is not null);
        foreach (var id in accepted.Values.Select(a => a.ApprovalId).Distinct())
        {
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
            var rows = decisions.GetValueOrDefault(id);
            if (rows == 0) { unaudited++; }
            if (rows > 1) { duplicated++; }
        }
        report.Facts["accepted (202)"] = accepted.Values.Select(a => a.ApprovalId).Distinct().Count().ToString(CultureInfo.InvariantCulture);
        report.Facts["decided / pending"] = $"{decided} / {pending}";
        report.Facts["lost"] = lost.ToString(CultureInfo.InvariantCulture);
        report.Facts["duplicated decisions"] = duplicated.ToString(CultureInfo.InvariantCulture);
        report.Facts["unaudited decisions"] = unaudited.ToString(CultureInfo.InvariantCulture);
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

    internal static string Rss(int? pid)
    {
        if (pid is null || !File.Exists($"/proc/{pid}/status"))
        {
            return "n/a";
        }
        var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return line?["VmRSS:".Length..].Trim() ?? "n/a";
    }
}
