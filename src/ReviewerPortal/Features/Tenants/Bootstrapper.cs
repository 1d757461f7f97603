using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Tenants;

/// <summary>
/// Creates configured (and, in demo mode, demo) tenants, policies, keys and accounts that do not exist yet. Instances
/// starting together on one PostgreSQL database seed one after the other (<see cref="DatabaseLock"/>), so each sees
/// what the one before created: one policy version, one set of accounts and keys, however many start.
/// </summary>
public sealed class Bootstrapper(
    IServiceProvider services,
    DatabaseLock databaseLock,
    IOptions<BootstrapOptions> bootstrap,
    DemoMode demo,
    IHostEnvironment environment,
    ILogger<Bootstrapper> logger) : IHostedService
{
    public static readonly string[] DemoUsers = ["alice", "bob", "carol", "gina", "oscar", "ada"];

    public bool DemoEnabled => demo.Enabled;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var seed = bootstrap.Value;
        if (DemoEnabled)
        {
            seed = WithDemo(seed);
            logger.LogWarning("Demo data is on: tenants acme and globex, agent keys demo-<tenant>-agent, " +
                              "accounts {Users} with tokens demo-<name>-token and passwords demo-<name>, published in the README: " +
                              "anyone can sign in as an admin. Never in production: Demo:Enabled=false.",
                string.Join(", ", DemoUsers));
        }
        await using var seeding = await databaseLock.AcquireAsync("seed", cancellationToken);
        await using var scope = services.CreateAsyncScope();
        var sp = scope.ServiceProvider;
        await SeedRolesAsync(sp.GetRequiredService<RoleManager<IdentityRole>>());
        foreach (var tenant in seed.Tenants)
        {
            await SeedTenantAsync(sp, tenant, cancellationToken);
        }
        foreach (var account in seed.Accounts)
        {
            await SeedAccountAsync(sp, account, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static async Task SeedRolesAsync(RoleManager<IdentityRole> roles)
    {
        foreach (var role in Roles.All)
        {
            if (!await roles.RoleExistsAsync(role))
            {
                await roles.CreateAsync(new IdentityRole(role));
            }
        }
    }

    private async Task SeedTenantAsync(IServiceProvider sp, TenantSeed seed, CancellationToken cancellationToken)
    {
        if (!TenantIds.IsValid(seed.Id))
        {
            throw new InvalidOperationException($"Bootstrap:Tenants: '{seed.Id}' is not a valid tenant id (a-z, 0-9, '-').");
        }
        var tenants = sp.GetRequiredService<TenantStore>();
        var created = await tenants.EnsureAsync(new TenantSettings
        {
            Tenant = seed.Id,
            DisplayName = seed.DisplayName,
            ApprovalTtl = seed.ApprovalTtl ?? TenantSettings.DefaultApprovalTtl,
            Approvers = seed.Approvers,
        });
        var policies = sp.GetRequiredService<PolicyStore>();
        if (await policies.GetCurrentSnapshotAsync(seed.Id) is null)
        {
            var yaml = seed.PolicyFile is null
                ? DemoPolicies.Default
                : await File.ReadAllTextAsync(Path.GetFullPath(seed.PolicyFile, environment.ContentRootPath), cancellationToken);
            var parsed = PolicyParser.Parse(yaml);
            var document = parsed.Document ?? throw new InvalidOperationException(
                $"Bootstrap policy of '{seed.Id}' is invalid: " +
                string.Join("; ", parsed.Errors.Select(e => $"{e.Field} (line {e.Line}, column {e.Column}): {e.Message}")));
            var audit = sp.GetRequiredService<AuditLog>();
            var entry = audit.NewEntry(seed.Id, "system:bootstrap", "policy_published");
            entry.PolicySnapshot = document.Snapshot;
            await audit.RecordAsync(entry, async json =>
            {
                var version = await policies.PublishAsync(seed.Id, document, yaml, "system:bootstrap",
                    sp.GetRequiredService<TimeProvider>().GetUtcNow(), json);
                return (version is not null, version);
            }, cancellationToken);
        }
        var keys = sp.GetRequiredService<ApiKeyService>();
        foreach (var key in seed.AgentKeys)
        {
            await keys.EnsureHashAsync(key.Name, ApiKeyKind.Agent, key.KeySha256.ToLowerInvariant(), seed.Id, null, cancellationToken);
        }
        if (created)
        {
            logger.LogInformation("Tenant {Tenant} created from configuration", seed.Id);
        }
    }

    private static async Task SeedAccountAsync(IServiceProvider sp, AccountSeed seed, CancellationToken cancellationToken)
    {
        var users = sp.GetRequiredService<UserManager<IdentityUser>>();
        var user = await users.FindByNameAsync(seed.UserName);
        if (user is null)
        {
            user = new IdentityUser(seed.UserName) { Email = $"{seed.UserName}@example.invalid", EmailConfirmed = true };
            var result = seed.InitialPassword is null
                ? await users.CreateAsync(user)
                : await users.CreateAsync(user, seed.InitialPassword);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException($"Account '{seed.UserName}': " + string.Join("; ", result.Errors.Select(e => e.Description)));
            }
            await users.AddToRolesAsync(user, seed.Roles);
        }
        var keys = sp.GetRequiredService<ApiKeyService>();
        foreach (var token in seed.Tokens)
        {
            await keys.EnsureHashAsync(token.Name, ApiKeyKind.Account, token.KeySha256.ToLowerInvariant(), null, seed.UserName, cancellationToken);
        }
    }

    private static BootstrapOptions WithDemo(BootstrapOptions configured)
    {
        static KeySeed Key(string name, string secret) => new() { Name = name, KeySha256 = ApiKeyAuthenticationHandler.HashSecret(secret) };
        static AccountSeed Account(string name, string role) => new()
        {
            UserName = name,
            Roles = [role],
            InitialPassword = $"demo-{name}",
            Tokens = [Key($"demo token of {name}", $"demo-{name}-token")],
        };
        return new BootstrapOptions
        {
            Tenants =
            [
                .. configured.Tenants,
                new TenantSeed { Id = "acme", DisplayName = "Acme Corp (demo)", Approvers = ["alice", "bob"], AgentKeys = [Key("demo acme agent", "demo-acme-agent")] },
                new TenantSeed { Id = "globex", DisplayName = "Globex (demo)", Approvers = ["gina"], AgentKeys = [Key("demo globex agent", "demo-globex-agent")] },
            ],
            Accounts =
            [
                .. configured.Accounts,
                Account("alice", Roles.Reviewer), Account("bob", Roles.Reviewer), Account("carol", Roles.Reviewer), Account("gina", Roles.Reviewer),
                Account("oscar", Roles.OnCall), Account("ada", Roles.Admin),
            ],
        };
    }
}
