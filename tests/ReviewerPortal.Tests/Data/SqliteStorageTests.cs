using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Data;

/// <summary>The default provider: databases of earlier versions keep migrating, and the key ring lives in the file too.</summary>
public sealed class SqliteStorageTests
{
    [Fact]
    public async Task A_database_created_by_InitialCreate_opens_and_migrates_keeping_its_rows_and_history()
    {
        var data = TestServers.NewTempDirectory("old-sqlite");
        var file = Path.Combine(data, "reviewerportal.db");
        // The schema script of 20261122141231_InitialCreate, as `dotnet ef migrations script` wrote it then.
        var script = (await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Data", "InitialCreate.sqlite.sql"))).TrimStart('\uFEFF');
        await using (var connection = new SqliteConnection($"Data Source={file};Pooling=false"))
        {
            await connection.OpenAsync();
            await using var create = connection.CreateCommand();
            create.CommandText = script + """
                INSERT INTO AspNetUsers (Id, UserName, NormalizedUserName, EmailConfirmed, PhoneNumberConfirmed, TwoFactorEnabled,
                                         LockoutEnabled, AccessFailedCount)
                VALUES ('u-old', 'olduser', 'OLDUSER', 1, 0, 0, 1, 0);
                INSERT INTO AuditEntries (EntryId, At, Tenant, Actor, Action, Hash) VALUES ('old-entry', 1, 'acme', 'x', 'y', 'h');
                """;
            await create.ExecuteNonQueryAsync();
        }

        await using (var app = await TestApp.StartAsync(dataPath: data))
        {
            Assert.Equal(1, await app.AuditCountAsync(null, "y"));
        }

        await using var check = new SqliteConnection($"Data Source={file};Pooling=false");
        await check.OpenAsync();
        var history = await ColumnAsync(check, "SELECT MigrationId FROM __EFMigrationsHistory ORDER BY MigrationId");
        Assert.Equal("20261122141231_InitialCreate", history[0]);
        Assert.True(history.Count > 1, "the later migrations were applied on top");
        Assert.Equal(["olduser"], await ColumnAsync(check, "SELECT UserName FROM AspNetUsers WHERE Id = 'u-old'"));
        Assert.Equal(["DataProtectionKeys"], await ColumnAsync(check, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'DataProtectionKeys'"));
    }

    [Fact]
    public async Task The_data_protection_key_ring_lives_in_the_database_and_a_cookie_survives_a_restart()
    {
        var data = TestServers.NewTempDirectory("ring");
        string cookie;
        await using (var first = await TestApp.StartAsync(dataPath: data))
        {
            cookie = await PostgresStorageTests.SignInAsync(first, "ada", "demo-ada");
        }

        await using (var check = new SqliteConnection($"Data Source={Path.Combine(data, "reviewerportal.db")};Pooling=false"))
        {
            await check.OpenAsync();
            Assert.NotEmpty(await ColumnAsync(check, "SELECT FriendlyName FROM DataProtectionKeys"));
        }
        await using var second = await TestApp.StartAsync(dataPath: data);
        using var client = second.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/oncall");
        request.Headers.Add("Cookie", cookie);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.SendAsync(request)).StatusCode);
    }

    [Theory]
    [InlineData("postgres", null, "Storage:Database")]
    [InlineData("postgres", "not a connection string", "Storage:Database")]
    [InlineData("oracle", null, "Storage:Provider")]
    public async Task A_bad_storage_setting_stops_the_start_naming_the_key(string provider, string? database, string key)
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Storage:Provider"] = provider,
            ["Storage:Database"] = database,
        }));
        var validation = error as OptionsValidationException ?? error.InnerException as OptionsValidationException;
        Assert.True(validation is not null, error.ToString());
        Assert.Contains(key, validation.Message);
    }

    private static async Task<List<string>> ColumnAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<string>();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetString(0));
        }
        return values;
    }
}
