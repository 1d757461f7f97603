using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Instrumentation.StackExchangeRedis;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Observability;

/// <summary>
/// OpenTelemetry (the meter and activity source <c>ReviewerPortal</c>; ASP.NET Core, HttpClient and Redis
/// instrumentation), the Prometheus scrape at <c>/metrics</c>, OTLP export when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is
/// set, and the probes <c>/healthz/live</c> and <c>/healthz/ready</c>.
/// </summary>
public static class ObservabilitySetup
{
    public const string MetricsPath = "/metrics";
    public const string LivePath = "/healthz/live";
    public const string ReadyPath = "/healthz/ready";
    private const string Ready = "ready";

    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<HealthOptions>().BindConfiguration(HealthOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddRuntimeDiagnostics();
        services.AddSingleton<OperationsSnapshot>();
        services.AddHostedService(sp => sp.GetRequiredService<OperationsSnapshot>());
        services.AddSingleton<PortalMetrics>();
        services.AddHostedService<RedisTracing>();

        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName: "ReviewerPortal")) // OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win
            .WithMetrics(m => m
                .AddMeter(PortalMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddPrometheusExporter())
            .WithTracing(t => t
                .AddSource(PortalTracing.SourceName)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsProbeOrScrape(context.Request.Path))
                .AddHttpClientInstrumentation());
        // This host's meter only: another host in the same process (the tests run many) has a "ReviewerPortal" meter of its own.
        services.ConfigureOpenTelemetryMeterProvider((sp, m) =>
        {
            var own = sp.GetRequiredService<IMeterFactory>();
            m.AddView(instrument => instrument.Meter.Name == PortalMetrics.MeterName && !ReferenceEquals(instrument.Meter.Scope, own)
                ? MetricStreamConfiguration.Drop
                : null);
        });
        // The standard variables (OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS, ...); nothing is sent unless the endpoint is set.
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            // Redis commands as spans only when spans leave the process: the client's profiler costs every command.
            otel.UseOtlpExporter().WithTracing(t => t.AddRedisInstrumentation());
        }

        services.AddHealthChecks()
            .AddCheck<RedisReadiness>("redis", tags: [Ready])
            .AddCheck<DatabaseReadiness>("database", tags: [Ready])
            .AddCheck<TimerReadiness>("timers", tags: [Ready])
            .AddCheck<AuditOutboxReadiness>("audit_outbox", tags: [Ready]);
        return builder;
    }

    private static bool IsProbeOrScrape(PathString path) =>
        path.StartsWithSegments("/healthz") || path.StartsWithSegments(MetricsPath) || path.StartsWithSegments(RuntimeDiagnostics.Path);

    public static IEndpointRouteBuilder MapTelemetry(this IEndpointRouteBuilder routes)
    {
        // Liveness: the process answers; no dependency is asked (a Redis outage must not get the pod restarted).
        routes.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync })
            .AllowAnonymous().DisableRateLimiting();
        routes.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = c => c.Tags.Contains(Ready), ResponseWriter = WriteAsync })
            .AllowAnonymous().DisableRateLimiting();
        if (routes.ServiceProvider.GetRequiredService<IOptions<TelemetryOptions>>().Value.Enabled)
        {
            // Rate-limited as any anonymous caller (by address): a scraper every few seconds is far below it, a token guesser is not.
            routes.MapPrometheusScrapingEndpoint(MetricsPath).AllowAnonymous().Add(ScrapeGuard);
        }
        routes.MapRuntimeDiagnostics(); // off by default (Diagnostics:Enabled), loopback only
        return routes;
    }

    /// <summary>
    /// An anonymous scrape only from loopback (<c>Metrics:AllowLoopback</c>); from anywhere else only with
    /// <c>Authorization: Bearer &lt;Metrics:ScrapeToken&gt;</c> (401 otherwise), and without a token configured the
    /// endpoint does not exist for other addresses (404).
    /// </summary>
    private static void ScrapeGuard(EndpointBuilder endpoint)
    {
        var inner = endpoint.RequestDelegate!;
        endpoint.RequestDelegate = context =>
        {
            var options = context.RequestServices.GetRequiredService<IOptionsMonitor<TelemetryOptions>>().CurrentValue;
            var status = ScrapeStatus(context, options);
            if (status == StatusCodes.Status200OK)
            {
                return inner(context);
            }
            context.Response.StatusCode = status;
            if (status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer realm=\"metrics\"";
            }
            return Task.CompletedTask;
        };
    }

    internal static int ScrapeStatus(HttpContext context, TelemetryOptions options)
    {
        var header = context.Request.Headers.Authorization.ToString();
        var presented = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim() : null;
        if (!string.IsNullOrEmpty(options.ScrapeToken) && presented is not null)
        {
            return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(options.ScrapeToken))
                ? StatusCodes.Status200OK
                : StatusCodes.Status401Unauthorized;
        }
        if (options.AllowLoopback && context.Connection.RemoteIpAddress is { } address && System.Net.IPAddress.IsLoopback(address))
        {
            return StatusCodes.Status200OK;
        }
        return string.IsNullOrEmpty(options.ScrapeToken) ? StatusCodes.Status404NotFound : StatusCodes.Status401Unauthorized;
    }

    /// <summary><c>{"status":"healthy","checks":{"redis":{"status":"healthy","description":"…"},…}}</c>; 503 when any check is unhealthy.</summary>
    private static async Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.Body);
        json.WriteStartObject();
        json.WriteString("status", report.Status.ToString().ToLowerInvariant());
        json.WriteStartObject("checks");
        foreach (var (name, entry) in report.Entries)
        {
            json.WriteStartObject(name);
            json.WriteString("status", entry.Status.ToString().ToLowerInvariant());
            if (entry.Description is { } description)
            {
                json.WriteString("description", description);
            }
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Hands the Redis connection to the Redis instrumentation once it is connected (after <see cref="RedisStartup"/>).</summary>
    private sealed class RedisTracing(RedisConnection redis, IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            services.GetService<StackExchangeRedisInstrumentation>()?.AddConnection("redis", redis.Multiplexer);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
