using System.Diagnostics;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Features.Observability;

/// <summary>The <c>Diagnostics</c> section: the runtime figures the load harness samples.</summary>
public sealed class DiagnosticsOptions
{
    public const string Section = "Diagnostics";

    /// <summary>Serve <c>GET /diagnostics/runtime</c> to loopback callers. Off by default; when off the route does not exist.</summary>
    public bool Enabled { get; set; }
}

/// <summary>What <c>GET /diagnostics/runtime</c> answers: this process's allocations, collections and memory, now.</summary>
public sealed record RuntimeFigures(
    int ProcessId,
    long AllocatedBytes,
    int Gen0Collections,
    int Gen1Collections,
    int Gen2Collections,
    long HeapSizeBytes,
    long WorkingSetBytes,
    double TotalProcessorMs,
    int ThreadCount,
    bool Collected);

/// <summary>
/// <c>GET /diagnostics/runtime</c> (off by default, <c>Diagnostics:Enabled</c>): <see cref="GC.GetTotalAllocatedBytes(bool)"/>,
/// the gen0/1/2 collection counts, the managed heap, the working set and the CPU time of this process, for the load
/// harness to take deltas per cycle. Loopback callers only (any other address: 404, as if it did not exist); not in
/// the OpenAPI document. <c>?collect=true</c> runs a full blocking collection first (for memory per open circuit).
/// </summary>
public static class RuntimeDiagnostics
{
    public const string Path = "/diagnostics/runtime";

    public static IServiceCollection AddRuntimeDiagnostics(this IServiceCollection services)
    {
        services.AddOptions<DiagnosticsOptions>().BindConfiguration(DiagnosticsOptions.Section).ValidateOnStart();
        return services;
    }

    public static IEndpointRouteBuilder MapRuntimeDiagnostics(this IEndpointRouteBuilder routes)
    {
        if (routes.ServiceProvider.GetRequiredService<IOptions<DiagnosticsOptions>>().Value.Enabled)
        {
            routes.MapGet(Path, Runtime).WithName("RuntimeDiagnostics").ExcludeFromDescription().AllowAnonymous().DisableRateLimiting();
        }
        return routes;
    }

    public static Results<Ok<RuntimeFigures>, NotFound> Runtime(HttpContext context, bool? collect)
    {
        if (context.Connection.RemoteIpAddress is not { } address || !System.Net.IPAddress.IsLoopback(address))
        {
            return TypedResults.NotFound();
        }
        if (collect == true)
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            // Aggressive: the collector also hands back the memory it keeps for later, so the working set is the
            // process's own use (what memory per open circuit compares), not the collector's budget of the moment.
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        using var process = Process.GetCurrentProcess();
        return TypedResults.Ok(new RuntimeFigures(
            process.Id,
            GC.GetTotalAllocatedBytes(precise: true),
            GC.CollectionCount(0),
            GC.CollectionCount(1),
            GC.CollectionCount(2),
            GC.GetGCMemoryInfo().HeapSizeBytes is > 0 and var heap ? heap : GC.GetTotalMemory(forceFullCollection: false),
            process.WorkingSet64,
            process.TotalProcessorTime.TotalMilliseconds,
            process.Threads.Count,
            collect == true));
    }
}
