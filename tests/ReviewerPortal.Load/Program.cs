using ReviewerPortal.Load;

// dotnet run -c Release --project tests/ReviewerPortal.Load -- <cycle|baseline|queue|fanout|faults|timers|garnet-kill|scaleout|flood|all> [options]
var options = LoadOptions.Parse(args);
if (options is null)
{
    Console.WriteLine("""
        usage: dotnet run -c Release --project tests/ReviewerPortal.Load -- <scenario> [options]
          scenarios: cycle, baseline, queue, fanout, faults, timers, garnet-kill, scaleout, flood, all
          --redis host:port     use this Redis (default: start an embedded Garnet with its append-only log)
          --duration 20         seconds of load per timed scenario (faults: 30; flood: half idle, half flooded)
          --warmup 20           unmeasured seconds of cycles first (cycle, baseline): tiered JIT settles in ~20 s
          --agents 16           concurrent agents (cycle, faults)
          --reviewers 4         concurrent reviewers
          --subscribers 200     fan-out subscribers
          --pending 100000      pending approvals for the queue scenario
          --approvals 2000      approvals whose SLA timers run in the timers scenario
          --rounds 50           garnet-kill: rounds of burst, kill -9 of Garnet, restart (per commit-wait setting)
          --burst 200           garnet-kill: approvals created per round
          --flood-rate 0        flood: tenant acme's requests/s (0: 32 loops as fast as answered)
          --out artifacts/load  where the JSON reports go
        """);
    return 2;
}
return await new Scenarios(options).RunAsync();
