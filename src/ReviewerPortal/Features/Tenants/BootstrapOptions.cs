using Microsoft.Extensions.Options;
namespace ReviewerPortal.Features.Tenants;

/// <summary>
/// Tenants, agent keys and accounts taken from configuration at start (created when missing, never overwritten:
/// after the first start, admins change them through the API and portal).
/// </summary>
public sealed class BootstrapOptions
{
    public const string Section = "Bootstrap";

    public List<TenantSeed> Tenants { get; set; } = [];
    public List<AccountSeed> Accounts { get; set; } = [];
}

public sealed class TenantSeed
{
    public string Id { get; set; } = "";
    public string? DisplayName { get; set; }

    /// <summary>Duration (e.g. <c>24:00:00</c>); default 24 h.</summary>
    public TimeSpan? ApprovalTtl { get; set; }
    public List<string> Approvers { get; set; } = [];

    /// <summary>Path of the initial policy YAML (relative to the content root); none: a policy that asks a human for everything.</summary>
    public string? PolicyFile { get; set; }

    /// <summary>Agent keys as SHA-256 hex of the secret (<c>printf %s "$KEY" | sha256sum</c>).</summary>
    public List<KeySeed> AgentKeys { get; set; } = [];
}

public sealed class KeySeed
{
    public string Name { get; set; } = "";
    public string KeySha256 { get; set; } = "";
}

public sealed class AccountSeed
{
    public string UserName { get; set; } = "";
    public List<string> Roles { get; set; } = [];

    /// <summary>Password set when the account is created (change it after); empty: API token only.</summary>
    public string? InitialPassword { get; set; }

    /// <summary>API tokens as SHA-256 hex of the secret.</summary>
    public List<KeySeed> Tokens { get; set; } = [];
}

public sealed class DemoOptions
{
    public const string Section = "Demo";

    /// <summary>
    /// Demo tenants, keys and accounts (their tokens and passwords are in the README: anyone can read them). Default: on
    /// only in the Development environment (the <c>dotnet run</c> launch profile); anywhere else only when set to true.
    /// </summary>
    public bool? Enabled { get; set; }
}

/// <summary>Whether this instance runs with the demo accounts (seeded at start, announced in the log and on every portal page).</summary>
public sealed class DemoMode(IOptions<DemoOptions> demo, IHostEnvironment environment)
{
    public bool Enabled => demo.Value.Enabled ?? environment.IsDevelopment();
}
