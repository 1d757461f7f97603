using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ReviewerPortal.Data;
using ReviewerPortal.Features.Receipts;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Audit;

public sealed partial class AuditCheckpoints
{
    /// <summary>Moves pending checkpoints (and the chain key) to the checkpoint store whenever one is written or a retry is due.</summary>
    private async Task PushLoopAsync(CancellationToken stoppingToken)
    {
        _push.Release(); // once at start: what an earlier run left pending
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _push.WaitAsync(stoppingToken);
                while (_push.CurrentCount > 0 && _push.Wait(0))
                {
                    // Coalesce: one pass serves every signal given so far.
                }
                await PushPendingAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "Pushing audit checkpoints to the checkpoint store failed; tried again later");
            }
        }
    }

    private async Task RetryTickAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CheckpointStore.RetryInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                _push.Release();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// One pass: each tenant's pending checkpoints, oldest first, appended to its log and then dropped from Redis; a
    /// failure leaves the rest of that tenant's pending for the next pass (so its log stays in order).
    /// </summary>
    internal async Task PushPendingAsync(CancellationToken cancellationToken)
    {
        string? error = null;
        try
        {
            await chainKey.EnsureStoredAsync(cancellationToken);
        }
        catch (CheckpointStoreUnavailableException ex)
        {
            error = ex.Message;
            logger.LogError("The audit chain key could not be written to the checkpoint store ({Error}); tried again later", ex.Message);
        }
        var names = (await tenants.ListAsync()).Concat(_states.Keys).Concat(_waiting.Keys).Distinct(StringComparer.Ordinal).ToList();
        foreach (var tenant in names)
        {
            // One instance pushes a tenant's pending checkpoints at a time: two reading the same pending entry would both
            // append it to the log. The lease outlives a crash only by its length; then another instance takes over.
            var lease = RedisKeys.AuditCheckpointPushing(tenant);
            var holder = Guid.NewGuid().ToString("N");
            if (!await redis.Database.StringSetAsync(lease, holder, PushLease, When.NotExists))
            {
                continue;
            }
            try
            {
                error = await PushTenantAsync(tenant, cancellationToken) ?? error;
            }
            finally
            {
                await redis.Database.ScriptEvaluateAsync(LuaScripts.Unlock, [lease], [holder]);
            }
        }
        if (error is null && _lastPushError is not null)
        {
            logger.LogInformation("The checkpoint store takes audit checkpoints again: every waiting one is written");
        }
        _lastPushError = error;
    }

    private static readonly TimeSpan PushLease = TimeSpan.FromMinutes(1);

    /// <summary>Pushes one tenant's pending checkpoints, oldest first; the store's error when it stopped on one.</summary>
    private async Task<string?> PushTenantAsync(string tenant, CancellationToken cancellationToken)
    {
        string? error = null;
        {
            var pending = (await redis.Database.HashGetAllAsync(RedisKeys.AuditCheckpointPending(tenant)))
                .Select(e => (Sequence: (long)e.Name, Line: (string)e.Value!)).OrderBy(e => e.Sequence).ToList();
            var left = pending.Count;
            foreach (var (sequence, line) in pending)
            {
                DateTimeOffset? created;
                try
                {
                    created = await store.AppendAsync(tenant, line, cancellationToken);
                }
                catch (CheckpointStoreUnavailableException ex)
                {
                    error = ex.Message;
                    logger.LogError("Audit checkpoint {Sequence} of {Tenant} is in Redis but the checkpoint store did not take it " +
                                    "({Error}); {Count} wait, tried again in {Retry}", sequence, tenant, ex.Message, left,
                        options.Value.CheckpointStore.RetryInterval);
                    break;
                }
                await redis.Database.ScriptEvaluateAsync(Pushed,
                    [RedisKeys.AuditCheckpoint(tenant), RedisKeys.AuditCheckpointPending(tenant)],
                    [sequence, created is { } c ? c.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture) : "",
                        PushedField, CreatedField]);
                left--;
            }
            if (left > 0)
            {
                _waiting[tenant] = left;
            }
            else
            {
                _waiting.TryRemove(tenant, out _);
            }
        }
        return error;
    }
}
