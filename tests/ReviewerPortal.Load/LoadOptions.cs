namespace ReviewerPortal.Load;

public sealed record LoadOptions(string Scenario, string? Redis, TimeSpan Duration, int Agents, int Reviewers, int Subscribers,
    int Pending, string Out, string Repo, TimeSpan Warmup, int Timers, int Rounds = 50, int Burst = 200, int FloodRate = 0)
{
    public static readonly string[] Known = ["cycle", "baseline", "queue", "fanout", "faults", "timers", "garnet-kill", "scaleout", "flood", "all"];

    public static LoadOptions? Parse(string[] args)
    {
        if (args.Length == 0 || !Known.Contains(args[0]))
        {
            return null;
        }
        var map = new Dictionary<string, string>();
        for (var i = 1; i + 1 < args.Length; i += 2)
        {
            map[args[i].TrimStart('-')] = args[i + 1];
        }
        int Int(string key, int fallback) => map.TryGetValue(key, out var v) ? int.Parse(v) : fallback;
        var repo = FindRepo();
        return new LoadOptions(args[0], map.GetValueOrDefault("redis"),
            TimeSpan.FromSeconds(Int("duration", args[0] == "faults" ? 30 : 20)), Int("agents", 16), Int("reviewers", 4),
            Int("subscribers", 200), Int("pending", 100_000), map.GetValueOrDefault("out") ?? Path.Combine(repo, "artifacts", "load"), repo,
            TimeSpan.FromSeconds(Int("warmup", 20)), Int("approvals", 2000), Int("rounds", 50), Int("burst", 200), Int("flood-rate", 0));
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
