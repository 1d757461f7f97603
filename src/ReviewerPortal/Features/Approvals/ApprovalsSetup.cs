using Microsoft.AspNetCore.Http.Connections;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Cases;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Receipts;
using ReviewerPortal.Features.Redaction;
using ReviewerPortal.Features.Health;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Approvals;

public static class ApprovalsSetup
{
    /// <summary>Redis, the approval core, tenants, policies, audit and the background services that drive them.</summary>
    public static IHostApplicationBuilder AddApprovals(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        builder.AddRedaction();
        // Deadlines are compared on one clock across the fleet: this machine's, corrected to the Redis server's.
        services.AddSingleton(sp => new RedisServerClock(sp.GetRequiredService<RedisConnection>(), TimeProvider.System,
            sp.GetRequiredService<ILogger<RedisServerClock>>()));
        services.AddSingleton<TimeProvider>(sp => sp.GetRequiredService<RedisServerClock>());
        services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<RedisOptions>().BindConfiguration(RedisOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ApprovalOptions>().BindConfiguration(ApprovalOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<RequestLimitOptions>().BindConfiguration(RequestLimitOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<BootstrapOptions>().BindConfiguration(BootstrapOptions.Section);
        services.AddOptions<DemoOptions>().BindConfiguration(DemoOptions.Section);
        services.AddSingleton<DemoMode>();

        // Hosted services start in registration order: Redis, then the database, then seed data, then the loops.
        services.AddSingleton<RedisConnection>();
        services.AddSingleton<RedisDurability>();
        services.AddHostedService<RedisStartup>();
        services.AddHostedService<RedisServerClockSync>();
        services.AddSingleton<RedisLockFactory>();
        services.AddSingleton<IApprovalStore, RedisApprovalStore>();
        services.AddSingleton<TenantStore>();
        services.AddSingleton<TenantSettingsService>();
        services.AddSingleton<PolicyStore>();
        services.AddSingleton<PolicyPublisher>();
        services.AddSingleton<StandingApprovals>();
        services.AddSingleton<TenantAccess>();
        services.AddOptions<Links.PortalOptions>().BindConfiguration(Links.PortalOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<Links.ActionLinkOptions>().BindConfiguration(Links.ActionLinkOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Links.ActionLinkKeys>();
        services.AddSingleton<Links.ActionLinks>();
        services.AddSingleton<AccessChanges>();
        services.AddSingleton<HubAccessWarden>();
        services.AddSingleton<HubNegotiations>();
        services.AddOptions<AuditOptions>().BindConfiguration(AuditOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<AuditLog>();
        services.AddSingleton<IAuditCheckpointStore>(sp =>
            sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<AuditOptions>>().Value.IsBlobStore
                ? ActivatorUtilities.CreateInstance<BlobCheckpointStore>(sp)
                : ActivatorUtilities.CreateInstance<FileCheckpointStore>(sp));
        services.AddSingleton<AuditChainKey>();
        services.AddSingleton<AuditCheckpoints>();
        services.AddSingleton<AuditReconciler>();
        services.AddSingleton<ChangeFeed>();
        services.AddSingleton<Counters>();
        services.AddSingleton<Infrastructure.Secrets.TenantSecrets>();
        services.AddSingleton<Receipts.IReceiptSigner, Receipts.ProtectedReceiptSigner>();
        services.AddSingleton<Receipts.ReceiptSigner>();
        services.AddSingleton<Dispatch.DispatchSignal>();
        services.AddSingleton<Dispatch.Dispatcher>();
        services.AddSingleton<Dispatch.ReleaseRepair>();
        // Outbound calls go through the SSRF guard and never follow a redirect (see AddOutboundHttpClient).
        services.AddOutbound();
        services.AddOutboundHttpClient(Dispatch.Dispatcher.HttpClientName);
        services.AddOptions<Dispatch.DispatchOptions>().BindConfiguration(Dispatch.DispatchOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<Notifications.NotifySignal>();
        services.AddSingleton<Notifications.Notifier>();
        services.AddOutboundHttpClient(Notifications.Notifier.HttpClientName);
        services.AddOptions<Notifications.NotificationOptions>().BindConfiguration(Notifications.NotificationOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ApprovalService>();
        services.AddSingleton<CaseStore>();
        services.AddSingleton<CaseService>();
        services.AddSingleton<ExpirySignal>();
        services.AddSingleton<ExpiryService>();

        services.AddExceptionHandler<StorageExceptionHandler>();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, AppJsonContext.Default));
        return builder;
    }

    /// <summary>Background services; registered after the database so they start once it is migrated.</summary>
    public static IHostApplicationBuilder AddApprovalWorkers(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHostedService<Bootstrapper>();
        builder.Services.AddHostedService<Infrastructure.Secrets.SecretsAtRestMigration>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ChangeFeed>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ExpiryService>());
        builder.Services.AddHostedService<AuditOutboxDrain>();
        builder.Services.AddHostedService<ApprovalIndexPruner>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditReconciler>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AuditCheckpoints>());
        builder.Services.AddHostedService<AgentHubRelay>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<HubAccessWarden>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Dispatch.Dispatcher>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Notifications.Notifier>());
        return builder;
    }

    public static IEndpointRouteBuilder MapApprovalsApis(this IEndpointRouteBuilder routes)
    {
        // WebSockets and server-sent events only: a long-polling connection token could be replayed by anyone holding it.
        routes.MapHub<AgentHub>(AgentHub.Path, o => o.Transports = HttpTransportType.WebSockets | HttpTransportType.ServerSentEvents)
            .Add(HubNegotiations.Guard);
        return routes.MapApprovalsEndpoints();
    }

    private static IEndpointRouteBuilder MapApprovalsEndpoints(this IEndpointRouteBuilder routes) => routes
        .MapHealthApi()
        .MapJobsApi()
        .MapApprovalsApi()
        .MapTenantsApi()
        .MapAgentKeysApi()
        .MapPoliciesApi()
        .MapAuditApi()
        .MapDispatchApi()
        .MapWorkflowApi()
        .MapCasesApi()
        .MapReceiptsApi()
        .MapEditAndApproveApi()
        .MapStandingApprovalsApi();
}
