using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Data;

/// <summary><c>copy-storage --to-postgres</c>: a SQLite deployment's accounts, keys, key ring and audit history, moved exactly and once.</summary>
public sealed class CopyStorageCommandTests
{
    private static readonly string[] Tables =
    [
        "AspNetRoles", "AspNetUsers", "AspNetRoleClaims", "AspNetUserClaims", "AspNetUserLogins", "AspNetUserTokens",
        "AspNetUserRoles", "ApiKeys", "DataProtectionKeys", "AuditEntries",
    ];

    [SkippableFact]
    public async Task Copies_a_sqlite_database_into_postgres_exactly_verifies_the_chains_and_copies_nothing_twice()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        var data = TestServers.NewTempDirectory("copy");
        var prefix = $"copy{Guid.NewGuid():N}:";
        string cookie;
        await using (var app = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix))
        {
            // Audit rows of two tenants (seeding, submits, a decision, a key created by an admin), a claim, a key ring.
            var pending = (await app.Agent("acme").SubmitPayment()).Str("approvalId");
            Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(pending)).StatusCode);
            await app.Agent("globex").SubmitPayment(7);
            Assert.Equal(HttpStatusCode.Created,
                (await app.Account("ada").PostAsJsonAsync("/api/v1/tenants/acme/agent-keys", new { name = "copied bot" })).StatusCode);
            await using var scope = app.Services.CreateAsyncScope();
            var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<Microsoft.AspNetCore.Identity.IdentityUser>>();
            await users.AddClaimAsync((await users.FindByNameAsync("carol"))!, new System.Security.Claims.Claim("team", "finance"));
            cookie = await PostgresStorageTests.SignInAsync(app, "ada", "demo-ada");
        }
        var sqlite = $"Data Source={Path.Combine(data, "reviewerportal.db")};Pooling=false";
        var sourceCounts = await CountsAsync(sqlite);
        Assert.True(sourceCounts["AuditEntries"] >= 6, $"{sourceCounts["AuditEntries"]} audit rows");
        Assert.True(sourceCounts["DataProtectionKeys"] >= 1);
        Assert.Equal(1, sourceCounts["AspNetUserClaims"]);

        var (code, output) = await RunAsync(pg, data);

        Assert.True(code == 0, output);
        foreach (var table in Tables)
        {
            Assert.Contains($"{table}: copied {sourceCounts[table]}, already there 0", output);
        }
        Assert.Contains($"audit acme: copied {await TenantCountAsync(sqlite, "acme")}, already there 0, chain intact", output);
        Assert.Contains($"audit globex: copied {await TenantCountAsync(sqlite, "globex")}, already there 0, chain intact", output);
        Assert.Equal(sourceCounts, await CountsAsync(pg));
        Assert.Equal(await AuditRowsAsync(sqlite), await AuditRowsAsync(pg));

        // Again: nothing is copied twice.
        var (again, secondOutput) = await RunAsync(pg, data);
        Assert.True(again == 0, secondOutput);
        foreach (var table in Tables)
        {
            Assert.Contains($"{table}: copied 0, already there {sourceCounts[table]}", secondOutput);
        }
        Assert.Contains("audit acme: copied 0", secondOutput);
        Assert.Equal(sourceCounts, await CountsAsync(pg));

        // The SQLite deployment ran on a little (a partly copied target): the next run copies only the tail.
        await using (var app = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix))
        {
            await app.Agent("acme").SubmitPayment(3);
        }
        var (tail, tailOutput) = await RunAsync(pg, data);
        Assert.True(tail == 0, tailOutput);
        Assert.Contains("AuditEntries: copied 1, already there", tailOutput);
        Assert.Equal(await AuditRowsAsync(sqlite), await AuditRowsAsync(pg));

        // The app on PostgreSQL: same accounts, keys and key ring (the SQLite cookie still signs in), chains intact.
        await using var onPostgres = await TestApp.StartAsync(postgres: pg, keyPrefix: prefix);
        using var browser = onPostgres.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        using var page = new HttpRequestMessage(HttpMethod.Get, "/oncall");
        page.Headers.Add("Cookie", cookie);
        Assert.Equal(HttpStatusCode.OK, (await browser.SendAsync(page)).StatusCode);
        foreach (var tenant in new[] { "acme", "globex" })
        {
            var verified = await (await onPostgres.Account("ada").GetAsync($"/api/v1/audit/verify?tenant={tenant}")).Json();
            Assert.True(verified.GetProperty("intact").GetBoolean(), verified.ToString());
            Assert.Equal(await TenantCountAsync(sqlite, tenant), verified.GetProperty("verifiedEntries").GetInt32());
        }
        // Identity columns continue after the copied ids.
        var (key, _) = await onPostgres.Services.GetRequiredService<ApiKeyService>().CreateAgentKeyAsync("acme", "after the copy");
        Assert.Equal(sourceCounts["ApiKeys"] + 1, key.Id);
    }

    [Fact]
    public async Task Without_a_target_it_prints_its_usage_and_fails()
    {
        using var output = new StringWriter();
        Assert.Equal(2, await CopyStorageCommand.RunAsync(["copy-storage"], output, output));
        Assert.Contains("--to-postgres", output.ToString());
    }

    private static async Task<(int Code, string Output)> RunAsync(string pg, string data)
    {
        using var output = new StringWriter();
        var code = await CopyStorageCommand.RunAsync(["copy-storage", "--to-postgres", pg, $"--Storage:DataPath={data}"], output, output);
        return (code, output.ToString());
    }

    private static async Task<Dictionary<string, long>> CountsAsync(string connectionString)
    {
        var counts = new Dictionary<string, long>();
        await using var connection = connectionString.StartsWith("Data Source", StringComparison.Ordinal)
            ? (System.Data.Common.DbConnection)new SqliteConnection(connectionString)
            : new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        foreach (var table in Tables)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = $"""SELECT COUNT(*) FROM "{table}" """;
            counts[table] = Convert.ToInt64(await command.ExecuteScalarAsync());
        }
        return counts;
    }

    private static async Task<long> TenantCountAsync(string sqlite, string tenant)
    {
        await using var connection = new SqliteConnection(sqlite);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM AuditEntries WHERE Tenant = $t";
        command.Parameters.AddWithValue("$t", tenant);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Every audit row's every field, in sequence order.</summary>
    private static async Task<List<string>> AuditRowsAsync(string connectionString)
    {
        await using var connection = connectionString.StartsWith("Data Source", StringComparison.Ordinal)
            ? (System.Data.Common.DbConnection)new SqliteConnection(connectionString)
            : new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT "Sequence", "EntryId", "At", "Tenant", "ApprovalId", "JobId", "Actor", "Action", "FromState", "ToState", "Reason",
                   "PolicySnapshot", "JobHash", "Details", "PreviousHash", "Hash"
            FROM "AuditEntries" ORDER BY "Sequence"
            """;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join('|', Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "<null>" : Convert.ToString(reader.GetValue(i)))));
        }
        return rows;
    }
}
