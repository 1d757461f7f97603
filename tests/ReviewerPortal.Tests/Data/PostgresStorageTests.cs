using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Data;

/// <summary>
/// <c>Storage:Provider=postgres</c> on a real PostgreSQL: migrations, accounts, keys and the Data Protection key ring
/// shared by every instance. These tests write no audit rows (seeding runs without demo tenants, whose policies are audited).
/// </summary>
public sealed partial class PostgresStorageTests
{
    /// <summary>Two accounts with passwords and API tokens; no tenants (a tenant's first policy is an audit row).</summary>
    internal static Dictionary<string, string?> Accounts() => new()
    {
        ["Demo:Enabled"] = "false",
        ["Bootstrap:Accounts:0:UserName"] = "ada",
        ["Bootstrap:Accounts:0:Roles:0"] = "admin",
        ["Bootstrap:Accounts:0:InitialPassword"] = "ada-password",
        ["Bootstrap:Accounts:0:Tokens:0:Name"] = "ada's token",
        ["Bootstrap:Accounts:0:Tokens:0:KeySha256"] = ApiKeyAuthenticationHandler.HashSecret("ada-token"),
        ["Bootstrap:Accounts:1:UserName"] = "rita",
        ["Bootstrap:Accounts:1:Roles:0"] = "reviewer",
        ["Bootstrap:Accounts:1:InitialPassword"] = "rita-password",
        ["Bootstrap:Accounts:1:Tokens:0:Name"] = "rita's token",
        ["Bootstrap:Accounts:1:Tokens:0:KeySha256"] = ApiKeyAuthenticationHandler.HashSecret("rita-token"),
    };

    [SkippableFact]
    public async Task Migrations_apply_and_the_app_starts_on_postgres_with_an_append_only_audit_table()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);

        await using var app = await TestApp.StartAsync(postgres: pg, settings: Accounts());

        Assert.NotEmpty(await QueryAsync<string>(pg, """SELECT "MigrationId" FROM "__EFMigrationsHistory" """));
        Assert.Equal(["ada", "rita"], (await QueryAsync<string>(pg, """SELECT "UserName" FROM "AspNetUsers" ORDER BY 1""")).ToArray());
        Assert.Equal(HttpStatusCode.OK, (await app.WithToken("ada-token").GetAsync("/api/v1/tenants")).StatusCode);
        var health = await app.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        var report = await health.Json();
        Assert.Equal("up", report.Str("postgres"));
        Assert.False(report.TryGetProperty("sqlite", out _), "only the store in use is named");

        // The audit history is append-only here too: a row goes in, nothing edits or removes it.
        await ExecuteAsync(pg, """
            INSERT INTO "AuditEntries" ("EntryId", "At", "Tenant", "Actor", "Action", "Hash") VALUES ('e1', 0, 'acme', 'x', 'y', 'h')
            """);
        var update = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(pg, """UPDATE "AuditEntries" SET "Actor" = 'z'"""));
        Assert.Contains("append-only", update.MessageText);
        var delete = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(pg, """DELETE FROM "AuditEntries" """));
        Assert.Contains("append-only", delete.MessageText);
        var truncate = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(pg, """TRUNCATE "AuditEntries" """));
        Assert.Contains("append-only", truncate.MessageText);
        Assert.Equal(1, await app.AuditCountAsync(null, "y"));
    }

    [SkippableFact]
    public async Task A_portal_cookie_issued_by_one_instance_is_accepted_by_another()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        var prefix = $"pg{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(postgres: pg, settings: Accounts(), keyPrefix: prefix);
        await using var b = await TestApp.StartAsync(postgres: pg, settings: Accounts(), keyPrefix: prefix);
        Assert.NotEqual(a.DataPath, b.DataPath);

        var cookie = await SignInAsync(a, "ada", "ada-password");

        using var onB = b.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/oncall");
        request.Headers.Add("Cookie", cookie);
        var page = await onB.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.DoesNotContain("account/login", page.Headers.Location?.ToString() ?? "");
        // Without the cookie, the same page sends the browser to sign in.
        var anonymous = await onB.GetAsync("/oncall");
        Assert.Contains("account/login", anonymous.Headers.Location?.ToString() ?? await anonymous.Content.ReadAsStringAsync());
        // Both instances protect with one key ring, kept in the database.
        Assert.NotEmpty(await QueryAsync<string>(pg, """SELECT "FriendlyName" FROM "DataProtectionKeys" """));
    }

    [SkippableFact]
    public async Task An_agent_key_created_on_one_instance_authenticates_on_another()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        var prefix = $"pg{Guid.NewGuid():N}:";
        await using var a = await TestApp.StartAsync(postgres: pg, settings: Accounts(), keyPrefix: prefix);
        await using var b = await TestApp.StartAsync(postgres: pg, settings: Accounts(), keyPrefix: prefix);
        Assert.Equal(HttpStatusCode.Unauthorized, (await b.WithToken("rpa_unknown").GetAsync("/api/v1/approvals")).StatusCode);

        // Created through the key service (the admin API also audits the creation: that needs the audit writer on PostgreSQL).
        var (_, secret) = await a.Services.GetRequiredService<ApiKeyService>().CreateAgentKeyAsync("acme", "deploy bot");

        var onB = await b.WithToken(secret).GetAsync("/api/v1/approvals");
        Assert.NotEqual(HttpStatusCode.Unauthorized, onB.StatusCode);
        Assert.NotEqual(HttpStatusCode.Forbidden, onB.StatusCode);
    }

    [SkippableFact]
    public async Task Two_instances_starting_together_seed_one_set_of_accounts_and_keys()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        var prefix = $"pg{Guid.NewGuid():N}:";

        var apps = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ =>
            Task.Run(() => TestApp.StartAsync(postgres: pg, settings: Accounts(), keyPrefix: prefix))));
        try
        {
            Assert.Equal(["ada", "rita"], (await QueryAsync<string>(pg, """SELECT "UserName" FROM "AspNetUsers" ORDER BY 1""")).ToArray());
            Assert.Equal(3, (await QueryAsync<string>(pg, """SELECT "Name" FROM "AspNetRoles" """)).Count);
            Assert.Equal(2, (await QueryAsync<string>(pg, """SELECT "UserId" FROM "AspNetUserRoles" """)).Count);
            Assert.Equal(2, (await QueryAsync<string>(pg, """SELECT "KeyHash" FROM "ApiKeys" """)).Count);
            foreach (var app in apps)
            {
                Assert.Equal(HttpStatusCode.OK, (await app.WithToken("rita-token").GetAsync("/api/v1/tenants")).StatusCode);
            }
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.DisposeAsync();
            }
        }
    }

    [SkippableFact]
    public async Task Postgres_outage_answers_503_naming_it_and_the_app_recovers_by_itself()
    {
        // A server of this test's own, to stop and start again.
        await using var server = await OwnPostgresServer.StartAsync();
        Skip.If(server is null, TestServers.PostgresInstallHint);
        var pg = await server.CreateDatabaseAsync() + ";Timeout=3;Command Timeout=5";
        await using var app = await TestApp.StartAsync(postgres: pg, settings: Accounts());
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);

        await server.StopAsync();

        var health = await app.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var report = await health.Json();
        Assert.Equal("down", report.Str("postgres"));
        Assert.Equal("postgres is not answering", report.Str("problem"));
        // A token not cached yet must be looked up in the database: 503 naming the store, not a 500 or a 401.
        var call = await app.WithToken("rita-token").GetAsync("/api/v1/tenants");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, call.StatusCode);
        Assert.Equal("postgres", (await call.Json()).Str("store"));

        await server.StartAgainAsync();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        HttpResponseMessage healthy;
        do
        {
            healthy = await app.CreateClient().GetAsync("/healthz");
        }
        while (healthy.StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline && await Pause());
        Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        Assert.Equal("up", (await healthy.Json()).Str("postgres"));
        Assert.Equal(HttpStatusCode.OK, (await app.WithToken("rita-token").GetAsync("/api/v1/tenants")).StatusCode);
    }

    private static async Task<bool> Pause()
    {
        await Task.Delay(200);
        return true;
    }

    [SkippableFact]
    public async Task Demo_instances_starting_together_on_postgres_publish_one_policy_version_and_one_set_of_accounts()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        var prefix = $"pg{Guid.NewGuid():N}:";

        var apps = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Task.Run(() => TestApp.StartAsync(postgres: pg, keyPrefix: prefix))));
        try
        {
            foreach (var tenant in new[] { "acme", "globex" })
            {
                var history = await (await apps[0].Account("ada").GetAsync($"/api/v1/tenants/{tenant}/policy/history")).Json();
                Assert.Single(history.GetProperty("versions").EnumerateArray());
            }
            Assert.Equal(2, await apps[1].AuditCountAsync(null, "policy_published"));
            Assert.Equal(6, (await QueryAsync<string>(pg, """SELECT "Id" FROM "AspNetUsers" """)).Count);
            Assert.Equal(8, (await QueryAsync<string>(pg, """SELECT "KeyHash" FROM "ApiKeys" """)).Count);
            foreach (var app in apps)
            {
                await app.Agent("acme").SubmitPayment();
            }
            Assert.Equal(3, await apps[2].AuditCountAsync(null, "submitted"));
        }
        finally
        {
            foreach (var app in apps)
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>Signs in through the portal's login form (anti-forgery token and all); answers the auth cookie as a Cookie header value.</summary>
    internal static async Task<string> SignInAsync(TestApp app, string user, string password)
    {
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var form = await client.GetStringAsync("/account/login");
        var token = AntiforgeryField().Match(form).Groups[1].Value;
        Assert.NotEmpty(token);
        var response = await client.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = token,
            ["Input.UserName"] = user,
            ["Input.Password"] = password,
        }));
        var cookie = response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Select(v => v.Split(';')[0]).FirstOrDefault(v => v.StartsWith("rp.auth=", StringComparison.Ordinal))
            : null;
        Assert.True(cookie is not null, $"signed in ({response.StatusCode}): {await response.Content.ReadAsStringAsync()}");
        return cookie;
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    internal static async Task<List<T>> QueryAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetFieldValue<T>(0));
        }
        return rows;
    }

    internal static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}

public sealed class StorageExceptionClassificationTests
{
    [Fact]
    public void Npgsql_failures_name_postgres_and_sqlite_failures_name_sqlite()
    {
        Assert.Equal("postgres", ReviewerPortal.Infrastructure.Http.StorageExceptionHandler.Classify(new NpgsqlException("gone")));
        Assert.Equal("postgres", ReviewerPortal.Infrastructure.Http.StorageExceptionHandler.Classify(
            new Microsoft.EntityFrameworkCore.DbUpdateException("save", new NpgsqlException("gone"))));
        Assert.Equal("postgres", ReviewerPortal.Infrastructure.Http.StorageExceptionHandler.Classify(
            new InvalidOperationException("wrapped", new NpgsqlException("gone"))));
        Assert.Equal("sqlite", ReviewerPortal.Infrastructure.Http.StorageExceptionHandler.Classify(
            new Microsoft.Data.Sqlite.SqliteException("locked", 5)));
    }
}
