using System.Net;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>
/// The checkpoint log in an object store (<c>Audit:CheckpointPath=azblob://container/prefix</c>), against a real Azure
/// Storage emulator (Azurite): checkpoints and the chain key land there, verification reads them back, an attacker with
/// the account key who rewrites the log is reported, and a store that is down never stops a decision.
/// </summary>
public sealed class AuditCheckpointStoreTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);
    private const string Container = "audit-checkpoints";

    [SkippableFact]
    public async Task Checkpoints_and_the_chain_key_land_in_the_blob_store()
    {
        await using var azurite = await StartAzuriteAsync();
        var prefix = $"cp-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(settings: Settings(azurite, prefix, every: 5));
        var first = (await AppendAsync(app, "blobs", 1))[0];
        await WaitForBlobCheckpointAsync(azurite, prefix, "blobs", first);
        await AppendAsync(app, "blobs", 4);
        var fifth = (await AppendAsync(app, "blobs", 1))[0];
        await WaitForBlobCheckpointAsync(azurite, prefix, "blobs", fifth);

        var log = Log(azurite, prefix, "blobs");
        Assert.Equal(BlobType.Append, (await log.GetPropertiesAsync()).Value.BlobType);
        Assert.Equal([first, fifth], (await ReadLogAsync(log)).Select(c => c.Sequence));
        // The chain key went to the store, not to a folder: the same protected blob as in Redis.
        var key = (await Blobs(azurite).GetBlobClient($"{prefix}/chain-key.v1").DownloadContentAsync()).Value.Content.ToString();
        Assert.Equal((string?)await Redis(app).StringGetAsync(RedisKeys.AuditChainKey), key);
        Assert.False(Directory.Exists(Path.Combine(app.DataPath, "audit-checkpoints")));

        var verify = await AuditTamperTests.VerifyAsync(app, "blobs");
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("ok", verify.GetProperty("checkpointLog").GetString());
        Assert.Equal(2, verify.GetProperty("checkpointsChecked").GetInt32());
    }

    [SkippableFact]
    public async Task Truncation_is_detected_from_the_blob_store_checkpoints()
    {
        await using var azurite = await StartAzuriteAsync();
        var prefix = $"cp-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(settings: Settings(azurite, prefix, every: 1));
        var sequences = await AppendAsync(app, "acme", 10);
        await WaitForBlobCheckpointAsync(azurite, prefix, "acme", sequences[^1]);

        // The newest five rows deleted from the database, and Redis's latest checkpoint gone too: only the object
        // store's log still knows how far the history went.
        await using (var db = await AuditTamperTests.Sqlite(app))
        {
            await AuditTamperTests.ExecuteAsync(db, $"DELETE FROM AuditEntries WHERE Sequence >= {sequences[^5]}");
        }
        await Redis(app).KeyDeleteAsync(RedisKeys.AuditCheckpoint("acme"));

        var verify = await AuditTamperTests.VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.True(verify.GetProperty("truncated").GetBoolean(), verify.ToString());
        Assert.Equal(sequences[^1], verify.GetProperty("checkpoint").GetProperty("sequence").GetInt64());
        Assert.Equal(sequences[^6], verify.GetProperty("lastSequence").GetInt64());
    }

    /// <summary>
    /// The attacker holds the storage account key (and the database). An append blob offers no call that changes what
    /// was appended, so they overwrite the whole log (a new blob under the same name) without its newest checkpoints,
    /// after cutting the history there; then they delete it and write it again as an append blob. Both are reported.
    /// </summary>
    [SkippableFact]
    public async Task Rewritten_checkpoint_blob_is_reported_tampered()
    {
        await using var azurite = await StartAzuriteAsync();
        var prefix = $"cp-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(settings: Settings(azurite, prefix, every: 1));
        var sequences = await AppendAsync(app, "acme", 6);
        await WaitForBlobCheckpointAsync(azurite, prefix, "acme", sequences[^1]);
        Assert.True((await AuditTamperTests.VerifyAsync(app)).GetProperty("intact").GetBoolean());
        var log = Log(azurite, prefix, "acme");
        var lines = (await log.DownloadContentAsync()).Value.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var kept = string.Join("", lines.Where(l => Claims(l).Sequence < sequences[^3]).Select(l => l + "\n"));

        // Appending can only add at the end: a write at the start of the log is refused by the service.
        await Assert.ThrowsAsync<Azure.RequestFailedException>(() => log.AppendBlockAsync(new MemoryStream(Encoding.UTF8.GetBytes(kept)),
            new AppendBlobAppendBlockOptions { Conditions = new AppendBlobRequestConditions { IfAppendPositionEqual = 0 } }));

        // The history cut after the last kept checkpoint (Redis is out of the attacker's reach).
        await using (var db = await AuditTamperTests.Sqlite(app))
        {
            await AuditTamperTests.ExecuteAsync(db, $"DELETE FROM AuditEntries WHERE Sequence >= {sequences[^3]}");
        }
        // 1. Overwritten (Put Blob over the append blob) with the older checkpoints only.
        await Blobs(azurite).GetBlobClient(log.Name).UploadAsync(BinaryData.FromString(kept), overwrite: true);
        var verify = await AuditTamperTests.VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("tampered", verify.GetProperty("checkpointLog").GetString());

        // 2. Deleted and created again as an append blob with the same older lines.
        await log.DeleteAsync();
        await log.CreateAsync();
        await log.AppendBlockAsync(new MemoryStream(Encoding.UTF8.GetBytes(kept)));
        verify = await AuditTamperTests.VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("tampered", verify.GetProperty("checkpointLog").GetString());
        Assert.Contains("checkpoint", verify.GetProperty("checkpointProblem").GetString());
    }

    [SkippableFact]
    public async Task Forged_line_appended_to_the_blob_log_is_reported_tampered()
    {
        await using var azurite = await StartAzuriteAsync();
        var prefix = $"cp-{Guid.NewGuid():N}";
        await using var app = await TestApp.StartAsync(settings: Settings(azurite, prefix, every: 1));
        var sequences = await AppendAsync(app, "acme", 3);
        await WaitForBlobCheckpointAsync(azurite, prefix, "acme", sequences[^1]);
        var log = Log(azurite, prefix, "acme");
        var last = (await log.DownloadContentAsync()).Value.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];

        // A checkpoint claiming a later head, its signature copied from a real one.
        var forged = last.Replace($"\\u0022sequence\\u0022:{sequences[^1]}", $"\\u0022sequence\\u0022:{sequences[^1] + 100}")
            .Replace($"\\\"sequence\\\":{sequences[^1]}", $"\\\"sequence\\\":{sequences[^1] + 100}");
        Assert.NotEqual(last, forged);
        await log.AppendBlockAsync(new MemoryStream(Encoding.UTF8.GetBytes(forged + "\n")));

        var verify = await AuditTamperTests.VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("tampered", verify.GetProperty("checkpointLog").GetString());
        Assert.False(verify.GetProperty("truncated").GetBoolean(), verify.ToString()); // the forged checkpoint was not believed
    }

    [SkippableFact]
    public async Task Decisions_go_on_while_the_blob_store_is_down_and_checkpoints_arrive_when_it_is_back()
    {
        await using var azurite = await StartAzuriteAsync();
        var prefix = $"cp-{Guid.NewGuid():N}";
        var settings = Settings(azurite, prefix, every: 1);
        settings["Audit:CheckpointStore:RetryInterval"] = "00:00:01";
        await using var app = await TestApp.StartAsync(settings: settings);
        var before = (await AppendAsync(app, "acme", 1))[0];
        await WaitForBlobCheckpointAsync(azurite, prefix, "acme", before);

        azurite.Stop();
        var agent = app.Agent("acme");
        for (var i = 0; i < 3; i++)
        {
            var id = (await agent.SubmitPayment(20 + i)).Str("approvalId");
            var decided = await app.Account("alice").Approve(id);
            Assert.Equal(HttpStatusCode.OK, decided.StatusCode);
        }
        var head = (await app.Services.GetRequiredService<AuditLog>().HeadAsync("acme", CancellationToken.None))!.Sequence;
        // Checkpointed in Redis, waiting for the store: shown on /healthz, and verify does not claim "intact".
        var health = await WaitForHealthWarningAsync(app, w => w.Contains("wait in Redis", StringComparison.Ordinal));
        Assert.Contains("azblob://", health);
        var verify = await AuditTamperTests.VerifyAsync(app);
        Assert.False(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("unreachable", verify.GetProperty("checkpointLog").GetString());

        await azurite.StartAgainAsync();
        await WaitForBlobCheckpointAsync(azurite, prefix, "acme", head);
        verify = await AuditTamperTests.VerifyAsync(app);
        Assert.True(verify.GetProperty("intact").GetBoolean(), verify.ToString());
        Assert.Equal("ok", verify.GetProperty("checkpointLog").GetString());
        await WaitForHealthWarningAsync(app, w => !w.Contains("wait in Redis", StringComparison.Ordinal));
    }

    private static async Task<AzuriteServer> StartAzuriteAsync()
    {
        var azurite = await AzuriteServer.StartAsync();
        Skip.If(azurite is null, AzuriteServer.InstallHint);
        return azurite!;
    }

    private static Dictionary<string, string?> Settings(AzuriteServer azurite, string prefix, int every) => new()
    {
        ["Audit:CheckpointPath"] = $"azblob://{Container}/{prefix}",
        ["Audit:CheckpointStore:ConnectionString"] = azurite.ConnectionString,
        ["Audit:CheckpointEvery"] = every.ToString(),
        ["Audit:CheckpointInterval"] = "1.00:00:00",
    };

    private static StackExchange.Redis.IDatabase Redis(TestApp app) => app.Services.GetRequiredService<RedisConnection>().Database;

    private static BlobContainerClient Blobs(AzuriteServer azurite) =>
        new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient(Container);

    private static AppendBlobClient Log(AzuriteServer azurite, string prefix, string tenant) =>
        Blobs(azurite).GetAppendBlobClient($"{prefix}/{tenant}.jsonl");

    private static AuditCheckpointClaims Claims(string line) =>
        JsonSerializer.Deserialize<AuditCheckpointClaims>(JsonDocument.Parse(line).RootElement.GetProperty("payload").GetString()!, Web)!;

    private static async Task<List<AuditCheckpointClaims>> ReadLogAsync(AppendBlobClient log) =>
        [.. (await log.DownloadContentAsync()).Value.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Claims)];

    private static async Task<long[]> AppendAsync(TestApp app, string tenant, int count)
    {
        var audit = app.Services.GetRequiredService<AuditLog>();
        var sequences = new long[count];
        for (var i = 0; i < count; i++)
        {
            var entry = audit.NewEntry(tenant, "user:alice", "note");
            await audit.AppendAsync(entry, CancellationToken.None);
            sequences[i] = entry.Sequence;
        }
        return sequences;
    }

    /// <summary>Waits (at most 60 s) for a checkpoint at or past <paramref name="sequence"/> in the tenant's append blob.</summary>
    private static async Task WaitForBlobCheckpointAsync(AzuriteServer azurite, string prefix, string tenant, long sequence)
    {
        var log = Log(azurite, prefix, tenant);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (await log.ExistsAsync() && (await ReadLogAsync(log)).Any(c => c.Sequence >= sequence))
            {
                return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"no checkpoint of {tenant} at {sequence} in the blob store");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits (at most 60 s) until /healthz's warnings, joined, satisfy <paramref name="condition"/>; answers them.</summary>
    private static async Task<string> WaitForHealthWarningAsync(TestApp app, Func<string, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var health = await (await app.CreateClient().GetAsync("/healthz")).Json();
            var warnings = string.Join("\n", health.GetProperty("warnings").EnumerateArray().Select(w => w.GetString()));
            if (condition(warnings))
            {
                return warnings;
            }
            Assert.True(DateTime.UtcNow < deadline, "healthz warnings: " + warnings);
            await Task.Delay(100);
        }
    }
}
