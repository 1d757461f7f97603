using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Features.Mcp;

/// <summary>
/// <c>McpGateway</c>: the upstream MCP servers re-exposed at <c>/mcp/{name}</c>, each keyed by its name. Every tool call
/// through the gateway becomes a job (<c>mcp.{name}.{tool}</c>, channel <c>mcp</c>) decided by the tenant's policy.
/// </summary>
public sealed class McpGatewayOptions
{
    public const string Section = "McpGateway";

    public Dictionary<string, McpUpstreamOptions> Upstreams { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How often a waiting call sends a progress notification (when the client gave a progress token); at most 15 s.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Longest time one forwarded call may take. A call the gateway started but whose result is not recorded after
    /// this (the instance stopped mid-call) is answered as "outcome unknown" and never run again.
    /// </summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>One upstream: <see cref="Url"/> (streamable HTTP) or <see cref="Command"/> + <see cref="Arguments"/> (stdio).</summary>
public sealed class McpUpstreamOptions
{
    public string? Url { get; set; }
    public string? Command { get; set; }
    public List<string> Arguments { get; set; } = [];

    /// <summary>The tenants whose agents may call it; anyone else gets 404, as for a name that does not exist.</summary>
    public List<string> Tenants { get; set; } = [];

    /// <summary>The env of the jobs its tool calls become.</summary>
    public string Env { get; set; } = "production";
}

/// <summary>Checks every upstream at start; a bad entry fails the boot with its key named (<c>McpGateway:Upstreams:files:Url</c>).</summary>
public sealed partial class McpGatewayOptionsValidator : IValidateOptions<McpGatewayOptions>
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
    private static partial Regex UpstreamName();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
    private static partial Regex EnvName();

    public ValidateOptionsResult Validate(string? name, McpGatewayOptions options)
    {
        var errors = new List<string>();
        const string root = McpGatewayOptions.Section + ":";
        if (options.ProgressInterval < TimeSpan.FromMilliseconds(100) || options.ProgressInterval > TimeSpan.FromSeconds(15))
        {
            errors.Add($"{root}ProgressInterval: between 00:00:00.1 and 00:00:15.");
        }
        if (options.CallTimeout < TimeSpan.FromSeconds(1) || options.CallTimeout > TimeSpan.FromHours(24))
        {
            errors.Add($"{root}CallTimeout: between 00:00:01 and 1.00:00:00.");
        }
        foreach (var (upstream, entry) in options.Upstreams)
        {
            var key = $"{root}Upstreams:{upstream}";
            if (!UpstreamName().IsMatch(upstream))
            {
                errors.Add($"{key}: the name must be letters, digits, '_' or '-' (up to 64), as it appears in /mcp/{{name}} and in topics.");
            }
            if (entry is null)
            {
                errors.Add($"{key}: empty entry.");
                continue;
            }
            var hasUrl = !string.IsNullOrWhiteSpace(entry.Url);
            var hasCommand = !string.IsNullOrWhiteSpace(entry.Command);
            if (hasUrl == hasCommand)
            {
                errors.Add($"{key}: set exactly one of Url (streamable HTTP) or Command (stdio).");
            }
            if (hasUrl && (!Uri.TryCreate(entry.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
                || !string.IsNullOrEmpty(uri.UserInfo)))
            {
                errors.Add($"{key}:Url: an absolute http(s) address without user:password@.");
            }
            if (!hasCommand && entry.Arguments.Count > 0)
            {
                errors.Add($"{key}:Arguments: only with Command.");
            }
            if (entry.Tenants.Count == 0 || entry.Tenants.Any(string.IsNullOrWhiteSpace))
            {
                errors.Add($"{key}:Tenants: list at least one tenant, no empty names.");
            }
            if (!EnvName().IsMatch(entry.Env ?? ""))
            {
                errors.Add($"{key}:Env: letters, digits and . _ : / - only, up to 128 characters.");
            }
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
