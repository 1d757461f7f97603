using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>Limits on JSON request bodies (the submit route has its own size: <c>Approvals:MaxSubmitBytes</c>).</summary>
public sealed class RequestLimitOptions
{
    public const string Section = "RequestLimits";

    /// <summary>Largest JSON body of the routes other than submit and resubmit (decisions, settings, cases, results).</summary>
    [Range(1024, 16 * 1024 * 1024)]
    public int MaxJsonBytes { get; set; } = 64 * 1024;

    /// <summary>Deepest nesting of objects and arrays in any JSON body, payloads included.</summary>
    [Range(4, 256)]
    public int MaxJsonDepth { get; set; } = 32;
}
