using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace ReviewerPortal.Tests.Support;

/// <summary>
/// The whole app in-process, against a real Redis-protocol server (its own key prefix, so tests run side by side
/// on one server) and a real SQLite file in a temporary folder, or a PostgreSQL database (<c>postgres:</c>, from
/// <see cref="TestServers.PostgresAsync"/>). Demo tenants, keys and accounts are seeded.
/// </summary>
public sealed class TestApp : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly FakeTimeProvider? _clock;
    private readonly Action<IServiceCollection>? _services;

    private bool _ownsData;
    private string _environment = "Testing";

    static TestApp()
    {
        // Many whole apps, servers and bUnit's blocking waits share this process's thread pool on a 2-core machine: start
        // it wide enough that a burst does not wait on the pool's slow growth (which showed as 5 s Redis timeouts).
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
    }

    private TestApp(string redis, string dataPath, string prefix, FakeTimeProvider? clock, IDictionary<string, string?>? settings,
        Action<IServiceCollection>? services, string? postgres)
    {
        _services = services;
        DataPath = dataPath;
        KeyPrefix = prefix;
        Postgres = postgres;
        _clock = clock;
        _settings = new Dictionary<string, string?>
        {
            ["Redis:Configuration"] = WithTestTimeouts(redis),
            ["Redis:KeyPrefix"] = prefix,
            ["Storage:DataPath"] = dataPath,
            ["Demo:Enabled"] = "true",
            // The tests' webhook receivers and SMTP sink listen on 127.0.0.1 over plain http/SMTP: allowed here explicitly
            // (the SSRF tests turn this off with Outbound:AllowedHosts:0 = "").
            ["Outbound:AllowHttp"] = "true",
            ["Outbound:AllowedHosts:0"] = "127.0.0.1",
            ["Outbound:AllowInsecureSmtp"] = "true",
        };
        if (postgres is not null)
        {
            _settings["Storage:Provider"] = "postgres";
            _settings["Storage:Database"] = postgres;
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }
    }

    /// <summary>
    /// Gives the app's Redis commands 15 s instead of the client's default 5 s, unless the test sets its own (the tests
    /// that stop a server do, to see the 503 quickly). Dozens of whole apps and servers share 2 cores here, and a reply
    /// already read off the socket was once left unprocessed for 6.5 s (a GET of a fresh tenant's chain key at start-up,
    /// "in-pipe: 5, rs: DequeueResult"): a stall of the test machine, not an answer the product gives. Latency is measured
    /// by the load harness, never asserted by a timeout here.
    /// </summary>
    private static string WithTestTimeouts(string redis) =>
        redis.Length == 0 || redis.Contains("asyncTimeout", StringComparison.OrdinalIgnoreCase)
            ? redis // empty: the app starts its own embedded server
            : redis + ",asyncTimeout=15000,syncTimeout=15000";

    public string DataPath { get; }
    public string KeyPrefix { get; }

    /// <summary>The PostgreSQL connection string the app runs on, or null on SQLite.</summary>
    public string? Postgres { get; }

    /// <summary>
    /// Starts the app on Garnet (or the given server) with a fresh data folder and key prefix, on SQLite or, with
    /// <paramref name="postgres"/>, on that PostgreSQL database; <paramref name="services"/> swaps or adds services
    /// (ConfigureTestServices) where a test must.
    /// </summary>
    public static async Task<TestApp> StartAsync(FakeTimeProvider? clock = null, string? redis = null,
        IDictionary<string, string?>? settings = null, string? dataPath = null, string? keyPrefix = null, bool kestrel = false,
        Action<IServiceCollection>? services = null, string? postgres = null, string environment = "Testing")
    {
        var app = new TestApp(redis ?? await TestServers.GarnetAsync(), dataPath ?? TestServers.NewTempDirectory("app"),
            keyPrefix ?? $"t{Guid.NewGuid():N}:", clock, settings, services, postgres) { _ownsData = dataPath is null, _environment = environment };
        try
        {
            if (kestrel)
            {
                app.UseKestrel(0); // a real loopback socket, for a browser
                app.StartServer();
                app.ClientOptions.BaseAddress = new Uri(app.BaseUrl);
            }
            app.CreateClient().Dispose(); // starts the host: Redis, migrations, seed data
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return app;
    }

    /// <summary>The address a browser reaches the app at (with <c>kestrel: true</c>).</summary>
    public string BaseUrl => Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
        .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First().Replace("[::]", "127.0.0.1");

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(_environment);
        builder.UseStaticWebAssets(); // MudBlazor's css/js from the package, as in development
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        // Every start creates the six demo accounts with passwords: at Identity's 100,000 PBKDF2 rounds that was ~0.5 s of
        // CPU per start (of ~1.2 s), over 250 starts in a run on 2 cores. Tests use 1,000 rounds; the app keeps the default
        // (the round count is stored in each hash, so verifying is unchanged).
        builder.ConfigureTestServices(services =>
            services.Configure<Microsoft.AspNetCore.Identity.PasswordHasherOptions>(o => o.IterationCount = 1_000));
        if (_clock is not null)
        {
            builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(_clock));
        }
        if (_services is not null)
        {
            builder.ConfigureTestServices(_services);
        }
    }

    /// <summary>How many audit rows record <paramref name="action"/> for the approval, or for any with null (read through the DbContext: SQLite or PostgreSQL).</summary>
    public async Task<int> AuditCountAsync(string? approvalId, string action)
    {
        await using var scope = Services.CreateAsyncScope();
        await using var db = await scope.ServiceProvider
            .GetRequiredService<Microsoft.EntityFrameworkCore.IDbContextFactory<ReviewerPortal.Data.AppDbContext>>().CreateDbContextAsync();
        return await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(db.AuditEntries,
            e => (approvalId == null || e.ApprovalId == approvalId) && e.Action == action);
    }

    public HttpClient Agent(string tenant) => WithToken($"demo-{tenant}-agent");

    public HttpClient Account(string user) => WithToken($"demo-{user}-token");

    public HttpClient WithToken(string token)
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, BaseAddress = ClientOptions.BaseAddress });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        if (Postgres is not null)
        {
            // Each test's database has its own pool: give its idle connections back to the shared server.
            await using var connection = new Npgsql.NpgsqlConnection(Postgres);
            Npgsql.NpgsqlConnection.ClearPool(connection);
        }
        if (!_ownsData)
        {
            return;
        }
        try
        {
            Directory.Delete(DataPath, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class Http
{
    public static async Task<JsonElement> Json(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return string.IsNullOrEmpty(text) ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public static string Str(this JsonElement element, string name) => element.GetProperty(name).GetString()!;

    public static Task<HttpResponseMessage> Submit(this HttpClient agent, object body) =>
        agent.PostAsJsonAsync("/api/v1/jobs", body);

    /// <summary>Submits a production payment, which every demo policy parks for a human; returns the 202 body.</summary>
    public static async Task<JsonElement> SubmitPayment(this HttpClient agent, int amount = 100, string? idempotencyKey = null)
    {
        var response = await agent.Submit(new
        {
            topic = "finance.payment.execute",
            env = "production",
            priority = "high",
            payload = new { invoice = $"INV-{amount}", amount },
            idempotencyKey,
        });
        Assert.Equal(System.Net.HttpStatusCode.Accepted, response.StatusCode);
        return await response.Json();
    }

    public static Task<HttpResponseMessage> Approve(this HttpClient reviewer, string id, object? body = null) =>
        reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/approve", body ?? new { reason = "looks right" });

    public static Task<HttpResponseMessage> Reject(this HttpClient reviewer, string id, object? body = null) =>
        reviewer.PostAsJsonAsync($"/api/v1/approvals/{id}/reject", body ?? new { reason = "no" });
}
