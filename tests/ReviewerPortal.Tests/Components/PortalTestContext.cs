using System.Security.Claims;
using Bunit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor.Services;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>
/// bUnit with the app's real services (real Redis-protocol server, real SQLite): the components are tested with
/// the store, the change feed and the decision path they use in production; only the signed-in user is set here.
/// </summary>
public abstract class PortalTestContext : BunitContext, IAsyncLifetime
{
    protected TestApp App { get; private set; } = null!;

    /// <summary>Settings the app starts with, beside the test defaults.</summary>
    protected virtual IDictionary<string, string?>? AppSettings => null;

    public async Task InitializeAsync()
    {
        // A loaded 2-core CI machine renders slower than a laptop: waits are bounded, not tight.
        DefaultWaitTimeout = TimeSpan.FromSeconds(10);
        App = await TestApp.StartAsync(settings: AppSettings);
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices();
        var sp = App.Services;
        Services.AddSingleton(sp.GetRequiredService<TimeProvider>());
        Services.AddSingleton(sp.GetRequiredService<ChangeFeed>());
        Services.AddSingleton(sp.GetRequiredService<ApprovalService>());
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Features.Bulk.BulkDecisions>());
        Services.AddSingleton(sp.GetRequiredService<IApprovalStore>());
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Components.Pages.Queue.QueueReads>());
        Services.AddSingleton(sp.GetRequiredService<TenantStore>());
        Services.AddSingleton(sp.GetRequiredService<TenantAccess>());
        Services.AddSingleton(sp.GetRequiredService<PolicyStore>());
        Services.AddSingleton(sp.GetRequiredService<PolicyPublisher>());
        Services.AddSingleton(sp.GetRequiredService<StandingApprovals>());
        Services.AddSingleton(sp.GetRequiredService<AuditLog>());
        Services.AddSingleton(sp.GetRequiredService<IDbContextFactory<AppDbContext>>());
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Features.Cases.CaseService>());
        Services.AddScoped<ReviewerPortal.Features.Reading.ReaderContext>();
        Services.AddScoped<ReviewerPortal.Features.Reading.RelativeTimeTicker>();
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Features.Reading.ThemeStore>());
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Features.Observability.OperationsSnapshot>());
        Services.AddSingleton(sp.GetRequiredService<ReviewerPortal.Features.Observability.PortalMetrics>());
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await DisposeAsync();
        await App.DisposeAsync();
    }

    protected void SignIn(string user, params string[] roles)
    {
        var auth = AddAuthorization();
        auth.SetAuthorized(user);
        auth.SetRoles(roles);
        auth.SetClaims(new Claim(ClaimNames.Kind, ClaimNames.KindAccount));
    }
}
