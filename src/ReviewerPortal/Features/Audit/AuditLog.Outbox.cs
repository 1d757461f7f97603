using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using ReviewerPortal.Data;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Features.Audit;

public sealed partial class AuditLog
{
    /// </summary>
    public async Task<int> DrainOutboxAsync(string tenant, TimeSpan minAge, CancellationToken cancellationToken)
    {
        var db = redis.Database;
        var key = RedisKeys.AuditOutbox(tenant);
        var cutoff = time.GetUtcNow() - minAge;
        var due = new List<(StackExchange.Redis.RedisValue Raw, AuditEntry Entry)>();
        foreach (var item in await db.ListRangeAsync(key))
        {
            var entry = JsonSerializer.Deserialize((string)item!, AppJsonContext.Default.AuditEntry);
            if (entry is not null && entry.At <= cutoff)
            {
                due.Add((item, entry));
            }
        }
        var written = 0;
        // The list holds the newest first: write the oldest first, so the chain keeps their order.
        due.Reverse();
        foreach (var chunk in due.Chunk(DrainChunk))
        {
            var work = new DrainWork([.. chunk.Select(c => c.Entry)]);
            await EnqueueAsync(work, cancellationToken);
            var rows = await work.Done.Task;
            for (var i = 0; i < chunk.Length; i++)
            {
                var (raw, entry) = chunk[i];
                if (rows[i].Refused is { } refused)
                {
                    logger.LogError(refused, "Audit entry {EntryId} ({Action}) in the outbox is refused by the table; it stays there", entry.EntryId, entry.Action);
                    continue;
                }
                if (rows[i].Inserted)
                {
                    written++;
                    logger.LogWarning("Audit entry {EntryId} ({Action}) recovered from the outbox", entry.EntryId, entry.Action);
                }
                await db.ListRemoveAsync(key, raw);
            }
        }
        return written;
    }

    /// <summary>Clears one tenant's committed entries from its outbox, one script for the batch (its keys share the tenant's slot).</summary>
    private async Task RemoveFromOutboxAsync(string tenant, StackExchange.Redis.RedisValue[] entries)
    {
        try
        {
            await redis.Database.ScriptEvaluateAsync(LuaScripts.OutboxRemove, [RedisKeys.AuditOutbox(tenant)], entries);
        }
        catch (Exception ex) when (ex is StackExchange.Redis.RedisException or TimeoutException)
        {
            // Harmless: the drain finds the rows already written and clears the entries.
        }
    }
}
