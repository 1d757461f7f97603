using System.CommandLine;

namespace ReviewerPortal.Load;

public sealed record LoadOptions(string Scenario, string? Redis, TimeSpan Duration, int Agents, int Reviewers, int Subscribers,
    int Pending, string Out, string Repo, TimeSpan Warmup, int Timers, int Rounds = 50, int Burst = 200, int FloodRate = 0, int Tabs = 50,
    string TabClient = "chromium")
{
    public static readonly string[] Known = ["cycle", "baseline", "queue", "fanout", "faults", "timers", "garnet-kill", "scaleout", "flood", "portal", "all"];

    /// <summary>
    /// The command line: a scenario and its options, parsed and checked by System.CommandLine (a bad number or an
    /// unknown scenario is an error naming it, with the usage, exit code 1), then <paramref name="run"/>.
    /// </summary>
    public static RootCommand Command(Func<LoadOptions, Task<int>> run)
    {
        var scenario = new Argument<string>("scenario")
        {
            Description = "What to measure. baseline: the /healthz floor and the full cycle in one run, with the issue's targets; " +
                          "portal: --tabs reviewer tabs (headless chromium, or --tab-client circuit) on one queue while the cycle load runs; " +
                          "'all' runs baseline, fanout, queue, faults and timers.",
        };
        scenario.AcceptOnlyFromAmong(Known);
        var redis = new Option<string?>("--redis") { Description = "Use this Redis (host:port; a comma-separated list for scaleout's cluster). Default: start an embedded Garnet with its append-only log." };
        var duration = new Option<int?>("--duration") { Description = "Seconds of load per timed scenario (default 20; faults 30; flood: half idle, half flooded)." };
        duration.Validators.Add(result => AtLeast(result, "--duration", 1));
        var warmup = Positive("--warmup", "Unmeasured seconds of cycles first (cycle, baseline): on 2 cores the tiered JIT is still compiling 2,000 methods per 5 s at 30 s and quiet after about 40 s (dotnet-counters).", 45, allowZero: true);
        var agents = Positive("--agents", "Concurrent agents (cycle, faults, scaleout).", 16);
        var reviewers = Positive("--reviewers", "Concurrent reviewers.", 4);
        var subscribers = Positive("--subscribers", "Fan-out subscribers.", 200);
        var pending = Positive("--pending", "Pending approvals for the queue scenario.", 100_000);
        var approvals = Positive("--approvals", "Approvals whose SLA timers run in the timers scenario.", 2000);
        var rounds = Positive("--rounds", "garnet-kill: rounds of burst, kill -9 of Garnet, restart (per commit-wait setting).", 50);
        var burst = Positive("--burst", "garnet-kill: approvals created per round.", 200);
        var floodRate = Positive("--flood-rate", "flood: tenant acme's requests/s (0: 32 loops as fast as answered).", 0, allowZero: true);
        var tabs = Positive("--tabs", "portal: reviewer tabs (Blazor circuits) open on acme's queue.", 50);
        var tabClient = new Option<string>("--tab-client")
        {
            Description = "portal: what a tab is. chromium: a page in headless chromium (the browser renders on the same cores); " +
                          "circuit: a Blazor circuit driven over its SignalR hub without a browser (the server's cost and latency alone).",
            DefaultValueFactory = _ => "chromium",
        };
        tabClient.AcceptOnlyFromAmong("chromium", "circuit");
        var output = new Option<string?>("--out") { Description = "Where the JSON reports go (default artifacts/load)." };

        var command = new RootCommand("ReviewerPortal's load and fault harness: starts the app (and Garnet) and prints the figures.")
        {
            scenario, redis, duration, warmup, agents, reviewers, subscribers, pending, approvals, rounds, burst, floodRate, tabs, tabClient, output,
        };
        command.SetAction(async (result, _) =>
        {
            var name = result.GetValue(scenario)!;
            var repo = FindRepo();
            var seconds = result.GetValue(duration) ?? (name == "faults" ? 30 : 20);
            var options = new LoadOptions(name, result.GetValue(redis),
                TimeSpan.FromSeconds(seconds), result.GetValue(agents), result.GetValue(reviewers),
                result.GetValue(subscribers), result.GetValue(pending), result.GetValue(output) ?? Path.Combine(repo, "artifacts", "load"), repo,
                TimeSpan.FromSeconds(result.GetValue(warmup)), result.GetValue(approvals), result.GetValue(rounds), result.GetValue(burst),
                result.GetValue(floodRate), result.GetValue(tabs), result.GetValue(tabClient)!);
            return await run(options);
        });
        return command;
    }

    /// <summary>A whole number option that is at least 1 (or 0 where that means something); the default when absent.</summary>
    private static Option<int> Positive(string name, string description, int fallback, bool allowZero = false)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => fallback };
        option.Validators.Add(result => AtLeast(result, name, allowZero ? 0 : 1));
        return option;
    }

    /// <summary>A number below <paramref name="minimum"/> is an error; what is no number at all the parser reports itself.</summary>
    private static void AtLeast(System.CommandLine.Parsing.OptionResult result, string name, int minimum)
    {
        if (result.Tokens.Count > 0 && int.TryParse(result.Tokens[^1].Value, out var value) && value < minimum)
        {
            result.AddError($"{name} must be {minimum} or more, not {value}.");
        }
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(Directory.GetCurrentDirectory());
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ReviewerPortal.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Run from inside the repository.");
    }
}
