using ReviewerPortal.Load;

// dotnet run -c Release --project tests/ReviewerPortal.Load -- <cycle|baseline|queue|fanout|faults|timers|garnet-kill|scaleout|flood|portal|all> [options]
// (--help lists the options and their defaults)
return await LoadOptions.Command(options => new Scenarios(options).RunAsync()).Parse(args).InvokeAsync();
