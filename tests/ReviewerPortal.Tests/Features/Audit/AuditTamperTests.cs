using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>
/// Someone with write access to the database (and nothing else: not the Data Protection key ring's protected chain key
/// kept outside it, not Redis, not the checkpoint log) edits, re-chains or cuts the audit history. Each is reported by
/// <c>GET /api/v1/audit/verify</c>.
/// </summary>
public sealed class AuditTamperTests
{
    private static readonly Dictionary<string, string?> EveryBatchCheckpointed = new() { ["Audit:CheckpointEvery"] = "1" };

    [Fact]
    public async Task Edited_row_is_reported_rewritten_at_its_sequence()
    {
        await using var app = await TestApp.StartAsync();
        var sequences = await AppendAsync(app, 10);
        var target = sequences[^4];
        await using var db = await Sqlite(app);

        await ExecuteAsync(db, $"UPDATE AuditEntries SET Actor = 'user:mallory' WHERE Sequence = {target}");

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(target, verify.GetProperty("rewritten").GetInt64());
    }

    [Fact]
    public async Task Edited_row_with_the_chain_recomputed_the_old_way_is_still_detected()
    {
        await using var app = await TestApp.StartAsync();
        var sequences = await AppendAsync(app, 10);
        var target = sequences[^4];
        await using var db = await Sqlite(app);

        await ExecuteAsync(db, $"UPDATE AuditEntries SET Actor = 'user:mallory' WHERE Sequence = {target}");
        await RechainTheOldWayAsync(db, target, downgrade: false);

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(target, verify.GetProperty("rewritten").GetInt64());
    }

    [Fact]
    public async Task Edited_row_rechained_the_old_way_and_marked_as_old_rows_is_still_detected()
    {
        await using var app = await TestApp.StartAsync();
        var sequences = await AppendAsync(app, 10);
        var target = sequences[^4];
        await using var db = await Sqlite(app);

        await ExecuteAsync(db, $"UPDATE AuditEntries SET Actor = 'user:mallory' WHERE Sequence = {target}");
        // The attacker also marks the rewritten rows as written before the keyed chain existed.
        await RechainTheOldWayAsync(db, target, downgrade: true);

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(target, verify.GetProperty("rewritten").GetInt64());
    }

    [Fact]
    public async Task Whole_history_rechained_the_old_way_is_caught_by_the_signed_checkpoint()
    {
        await using var app = await TestApp.StartAsync(settings: EveryBatchCheckpointed);
        var sequences = await AppendAsync(app, 10);
        var checkpoint = await WaitForCheckpointAsync(app, sequences[^1]);
        await using var db = await Sqlite(app);

        // Every keyed row downgraded: the chain alone looks like one written entirely before the keyed chain existed.
        await ExecuteAsync(db, $"UPDATE AuditEntries SET Actor = 'user:mallory' WHERE Sequence = {sequences[2]}");
        await RechainTheOldWayAsync(db, 0, downgrade: true);

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.True(verify.GetProperty("truncated").GetBoolean(), verify.ToString());
        Assert.Equal(checkpoint, verify.GetProperty("checkpoint").GetProperty("sequence").GetInt64());
    }

    [Fact]
    public async Task Deleting_the_newest_rows_is_reported_truncated()
    {
        await using var app = await TestApp.StartAsync(settings: EveryBatchCheckpointed);
        var sequences = await AppendAsync(app, 10);
        var checkpoint = await WaitForCheckpointAsync(app, sequences[^1]);
        Assert.True((await VerifyAsync(app)).GetProperty("intact").GetBoolean());
        await using var db = await Sqlite(app);

        await ExecuteAsync(db, "DELETE FROM AuditEntries WHERE Sequence IN (SELECT Sequence FROM AuditEntries WHERE Tenant = 'acme' ORDER BY Sequence DESC LIMIT 5)");

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.True(verify.GetProperty("truncated").GetBoolean(), verify.ToString());
        Assert.Equal(JsonValueKind.Null, verify.GetProperty("rewritten").ValueKind);
        Assert.Equal(sequences[^6], verify.GetProperty("lastSequence").GetInt64());
        Assert.Equal(checkpoint, verify.GetProperty("checkpoint").GetProperty("sequence").GetInt64());
    }

    [Fact]
    public async Task Untouched_history_is_intact_with_its_checkpoint()
    {
        await using var app = await TestApp.StartAsync(settings: EveryBatchCheckpointed);
        var sequences = await AppendAsync(app, 10);
        var checkpoint = await WaitForCheckpointAsync(app, sequences[^1]);

        var verify = await VerifyAsync(app);
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.False(verify.GetProperty("truncated").GetBoolean());
        Assert.Equal(JsonValueKind.Null, verify.GetProperty("rewritten").ValueKind);
        Assert.Equal(sequences[^1], verify.GetProperty("lastSequence").GetInt64());
        Assert.Equal(checkpoint, verify.GetProperty("checkpoint").GetProperty("sequence").GetInt64());
    }

    [Fact]
    public async Task History_written_before_the_keyed_chain_still_verifies_and_is_anchored_by_the_first_keyed_row()
    {
        await using var app = await TestApp.StartAsync();
        await using var db = await Sqlite(app);
        // Three rows as the previous version wrote them: SHA-256 over the fields and the previous hash, no chain version.
        string? previous = null;
        var at = new DateTimeOffset(2026, 11, 1, 8, 0, 0, TimeSpan.Zero).UtcTicks;
        for (var i = 0; i < 3; i++)
        {
            var entryId = $"legacy{i:D26}";
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u001f',
                previous, entryId, (at + i).ToString(CultureInfo.InvariantCulture), "legacy", null, null, "user:alice", "note",
                null, null, $"old {i}", null, null, null))));
            var previousSql = previous is null ? "NULL" : $"'{previous}'";
            await ExecuteAsync(db, "INSERT INTO AuditEntries (EntryId, At, Tenant, Actor, Action, Reason, PreviousHash, Hash) " +
                                   $"VALUES ('{entryId}', {at + i}, 'legacy', 'user:alice', 'note', 'old {i}', {previousSql}, '{hash}')");
            previous = hash;
        }
        var audit = app.Services.GetRequiredService<AuditLog>();
        var keyed = audit.NewEntry("legacy", "user:alice", "note");
        await audit.AppendAsync(keyed, CancellationToken.None);

        var verify = await VerifyAsync(app, "legacy");
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(4, verify.GetProperty("verifiedEntries").GetInt32());
        Assert.Equal(previous, keyed.PreviousHash);
        Assert.Equal(1, keyed.ChainVersion);

        // An old row rewritten and its old-style chain recomputed: the first keyed row no longer links to it.
        await ExecuteAsync(db, "UPDATE AuditEntries SET Actor = 'user:mallory' WHERE EntryId = 'legacy00000000000000000000000001'");
        await RechainTheOldWayAsync(db, 0, downgrade: false, tenant: "legacy", stopAtKeyed: true);
        verify = await VerifyAsync(app, "legacy");
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(keyed.Sequence, verify.GetProperty("rewritten").GetInt64());
    }

    [Fact]
    public async Task Lost_chain_key_is_never_replaced_while_keyed_rows_exist()
    {
        var data = TestServers.NewTempDirectory("lost-key");
        await using (var first = await TestApp.StartAsync(dataPath: data))
        {
            await AppendAsync(first, 1);
        }
        File.Delete(Path.Combine(data, "audit-checkpoints", "chain-key.v1"));

        // A new key prefix: Redis does not have the key either. Seeding the tenants again writes audit rows, which
        // are refused (no row is written under a new key): the start fails, naming the file to restore.
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => TestApp.StartAsync(dataPath: data));
        Assert.Contains("chain-key.v1", refused.Message);
        Assert.False(File.Exists(Path.Combine(data, "audit-checkpoints", "chain-key.v1")));
    }

    [SkippableFact]
    public async Task On_postgres_an_edit_and_a_cut_are_detected()
    {
        var pg = await TestServers.PostgresAsync();
        Skip.If(pg is null, TestServers.PostgresInstallHint);
        await using var app = await TestApp.StartAsync(postgres: pg, settings: EveryBatchCheckpointed);
        var sequences = await AppendAsync(app, 10);
        await WaitForCheckpointAsync(app, sequences[^1]);
        await using var db = new NpgsqlConnection(pg);
        await db.OpenAsync();
        // The append-only triggers stop the app's own mistakes, not the database's owner.
        await ExecuteAsync(db, """ALTER TABLE "AuditEntries" DISABLE TRIGGER USER""");

        await ExecuteAsync(db, $"""UPDATE "AuditEntries" SET "Actor" = 'user:mallory' WHERE "Sequence" = {sequences[3]}""");
        await RechainTheOldWayAsync(db, sequences[3], downgrade: false);
        await ExecuteAsync(db, $"""DELETE FROM "AuditEntries" WHERE "Sequence" >= {sequences[^5]}""");

        var verify = await VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal(sequences[3], verify.GetProperty("rewritten").GetInt64());
        Assert.True(verify.GetProperty("truncated").GetBoolean(), verify.ToString());
    }

    /// <summary>Appends <paramref name="count"/> entries to acme's history; answers their sequences.</summary>
    internal static async Task<long[]> AppendAsync(TestApp app, int count)
    {
        var audit = app.Services.GetRequiredService<AuditLog>();
        var sequences = new long[count];
        for (var i = 0; i < count; i++)
        {
            var entry = audit.NewEntry("acme", "user:alice", "note");
            entry.Reason = $"entry {i}";
            await audit.AppendAsync(entry, CancellationToken.None);
            sequences[i] = entry.Sequence;
        }
        return sequences;
    }

    internal static async Task<JsonElement> VerifyAsync(TestApp app, string tenant = "acme") =>
        await (await app.Account("ada").GetAsync($"/api/v1/audit/verify?tenant={tenant}")).Json();

    /// <summary>Waits (at most 30 s) until the verify answer names a signed checkpoint at or past <paramref name="sequence"/>.</summary>
    internal static async Task<long> WaitForCheckpointAsync(TestApp app, long sequence)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var verify = await VerifyAsync(app);
            if (verify.TryGetProperty("checkpoint", out var checkpoint) && checkpoint.ValueKind == JsonValueKind.Object
                && checkpoint.GetProperty("sequence").GetInt64() >= sequence)
            {
                return checkpoint.GetProperty("sequence").GetInt64();
            }
            Assert.True(DateTime.UtcNow < deadline, $"no checkpoint at {sequence}: {verify}");
            await Task.Delay(50);
        }
    }

    internal static async Task<SqliteConnection> Sqlite(TestApp app)
    {
        var db = new SqliteConnection($"Data Source={Path.Combine(app.DataPath, "reviewerportal.db")};Pooling=false");
        await db.OpenAsync();
        // The append-only triggers stop the app's own mistakes, not someone who holds the file.
        await ExecuteAsync(db, "DROP TRIGGER IF EXISTS AuditEntries_NoUpdate; DROP TRIGGER IF EXISTS AuditEntries_NoDelete;");
        return db;
    }

    internal static async Task ExecuteAsync(DbConnection db, string sql)
    {
        await using var command = db.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// What an attacker with the database and the old formula does: from <paramref name="from"/> on, every acme row gets
    /// its SHA-256 recomputed over its fields and the (recomputed) previous hash, as rows were hashed before the keyed
    /// chain; with <paramref name="downgrade"/> the rows are also marked as written the old way.
    /// </summary>
    private static async Task RechainTheOldWayAsync(DbConnection db, long from, bool downgrade, string tenant = "acme", bool stopAtKeyed = false)
    {
        var q = db is NpgsqlConnection ? "\"" : "";
        string C(string name) => q + name + q;
        var rows = new List<object?[]>();
        await using (var read = db.CreateCommand())
        {
            read.CommandText = $"SELECT {string.Join(", ", new[] { "Sequence", "PreviousHash", "EntryId", "At", "Tenant", "ApprovalId", "JobId", "Actor", "Action", "FromState", "ToState", "Reason", "PolicySnapshot", "JobHash", "Details", "ApprovalSeq", "Hash", "ChainVersion" }.Select(C))} " +
                               $"FROM {C("AuditEntries")} WHERE {C("Tenant")} = '{tenant}' ORDER BY {C("Sequence")}";
            await using var reader = await read.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var row = new object?[reader.FieldCount];
                for (var i = 0; i < row.Length; i++)
                {
                    row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                }
                rows.Add(row);
            }
        }
        string? previous = null;
        foreach (var row in rows)
        {
            var sequence = Convert.ToInt64(row[0], CultureInfo.InvariantCulture);
            if (stopAtKeyed && Convert.ToInt64(row[17], CultureInfo.InvariantCulture) > 0)
            {
                break; // the attacker cannot recompute a keyed row
            }
            if (sequence < from)
            {
                previous = (string)row[16]!;
                continue;
            }
            var text = string.Join('\u001f', previous, row[2], Convert.ToInt64(row[3], CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture),
                row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11], row[12], row[13], row[14]);
            if (row[15] is { } seq)
            {
                text += "\u001fseq=" + Convert.ToInt64(seq, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);
            }
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
            await using var update = db.CreateCommand();
            var previousSql = previous is null ? "NULL" : $"'{previous}'";
            var downgradeSql = downgrade ? $", {C("ChainVersion")} = 0" : "";
            update.CommandText = $"UPDATE {C("AuditEntries")} SET {C("PreviousHash")} = {previousSql}, {C("Hash")} = '{hash}'{downgradeSql} WHERE {C("Sequence")} = {sequence}";
            await update.ExecuteNonQueryAsync();
            previous = hash;
        }
    }
}
