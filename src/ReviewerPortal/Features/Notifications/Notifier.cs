using System.Text;
using System.Text.Json;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using MimeKit;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Json;
using ReviewerPortal.Infrastructure.Outbound;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Timers;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Notifications;

/// <summary>Wakes the notifier when a transition wrote a notification.</summary>
public sealed class NotifySignal : WakeSignal;

/// <summary>
/// Delivers the tenants' notification outboxes: a webhook POST (JSON body, <c>X-Signature: sha256=HMAC</c> of the body
/// with the tenant's secret, <c>Idempotency-Key</c> = the notification id) and an e-mail over SMTP (to the people
/// notified and the tenant's team addresses, <c>Message-ID</c> derived from the notification id). Each channel is
/// marked done once it succeeded, so a retry only repeats what failed; failures back off exponentially, are audited
/// and listed for the portal, and never touch the approval that caused them.
/// </summary>
public sealed partial class Notifier(
    RedisConnection redis,
    TenantStore tenants,
    Infrastructure.Secrets.TenantSecrets secrets,
    AuditLog audit,
    Counters counters,
    RedisLockFactory locks,
    NotifySignal signal,
    IHttpClientFactory httpFactory,
    IServiceScopeFactory scopes,
    OutboundGuard outbound,
    IOptions<NotificationOptions> options,
    TimeProvider time,
    Observability.PortalMetrics metrics,
    Slack.SlackMessages slack,
    IApprovalStore approvals,
    Approvals.Links.ActionLinks actionLinks,
    Delegation.DelegationStore delegations,
    ILogger<Notifier> logger) : DueWorkService(signal, time, logger)
{
    public const string HttpClientName = "notifications";
    private const int KeptFailures = 100;

    private IDatabase Db => redis.Database;

    protected override bool Enabled => options.Value.Enabled;

    /// <summary>How often each failing notification has thrown in a row (this instance's view; it only paces the retries).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string Tenant, string Id), int> _errors = new();

    protected override async Task<DateTimeOffset?> RunOnceAsync(CancellationToken cancellationToken)
    {
        DateTimeOffset? next = null;
        foreach (var tenant in await tenants.ListAsync())
        {
            try
            {
                var settings = await tenants.GetSettingsAsync(tenant);
                var due = await Db.SortedSetRangeByScoreAsync(RedisKeys.NotifyOutbox(tenant), double.NegativeInfinity,
                    Time.GetUtcNow().ToUnixTimeMilliseconds(), take: 100);
                await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
                    async (id, ct) => await DeliverContainedAsync(tenant, settings, (string)id!, ct));
                var first = await Db.SortedSetRangeByRankWithScoresAsync(RedisKeys.NotifyOutbox(tenant), 0, 0);
                if (first.Length > 0)
                {
                    next = Earliest(next, DateTimeOffset.FromUnixTimeMilliseconds((long)first[0].Score));
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Notifications of tenant {Tenant} could not be read; the other tenants go on", tenant);
                next = Earliest(next, Time.GetUtcNow() + TimeSpan.FromSeconds(5));
            }
        }
        return next;
    }

    /// <summary>
    /// Delivers one notification. One that throws (a damaged body, a bug) is audited as <c>notification_error</c> and
    /// retried later with back-off; it never stops another notification or tenant.
    /// </summary>
    private async Task DeliverContainedAsync(string tenant, TenantSettings? settings, string id, CancellationToken cancellationToken)
    {
        try
        {
            await DeliverAsync(tenant, settings, id, cancellationToken);
            _errors.TryRemove((tenant, id), out _);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var attempt = _errors.AddOrUpdate((tenant, id), 1, (_, n) => n + 1);
            var retryAt = Time.GetUtcNow() + Backoff.Exponential(attempt, TimeSpan.FromSeconds(5), options.Value.MaxBackoff);
            logger.LogError(ex, "Notification {Id} of {Tenant} failed (attempt {Attempt}); retrying at {RetryAt:O}", id, tenant, attempt, retryAt);
            try
            {
                await Db.SortedSetAddAsync(RedisKeys.NotifyOutbox(tenant), id, retryAt.ToUnixTimeMilliseconds(), SortedSetWhen.Exists);
                var entry = audit.NewEntry(tenant, "system:notifier", "notification_error");
                entry.Reason = $"{id} failed, attempt {attempt}: {ex.GetType().Name}: {ex.Message}; retried at {retryAt:O}";
                await audit.AppendAsync(entry, cancellationToken);
            }
            catch (Exception inner) when (inner is not OperationCanceledException)
            {
                logger.LogError(inner, "Failure of notification {Id} of {Tenant} could not be recorded", id, tenant);
            }
        }
    }

    private async Task DeliverAsync(string tenant, TenantSettings? settings, string id, CancellationToken cancellationToken)
    {
        // Held longer than both channels can take, so no other instance starts the same delivery meanwhile.
        await using var held = await locks.TryAcquireAsync(RedisKeys.Lock(tenant, "ntf:" + id), cancellationToken, TimeSpan.Zero,
            lease: options.Value.Timeout * 3 + TimeSpan.FromSeconds(30));
        if (held is null)
        {
            return; // another instance is delivering it
        }
        var bodies = RedisKeys.NotifyBodies(tenant);
        var stored = await Db.HashGetAsync(bodies, [id, id + "|webhook", id + "|email", id + "|slack"]);
        var notification = stored[0].IsNullOrEmpty ? null : Notification.FromJson((string)stored[0]!);
        if (notification is not null)
        {
            // Resolved at delivery: whoever is away now is replaced by their delegate.
            notification = notification with { Recipients = await delegations.RecipientsAsync(notification.Recipients) };
        }
        var channels = settings?.Workflow.Notifications;
        var toSlack = settings?.Slack?.WebhookUrl is not null && notification is not null && Slack.SlackMessages.Posts(notification.Kind);
        if (notification is null || channels is not { Any: true } && !toSlack)
        {
            // Gone, or the tenant turned its channels off since: nothing to deliver.
            await ForgetAsync(tenant, id);
            return;
        }

        using var span = Observability.PortalTracing.StartContinuing("notify " + notification.Kind, System.Diagnostics.ActivityKind.Producer,
            notification.TraceParent, tags: [("reviewerportal.tenant", tenant)]);
        var failures = new List<(string Channel, string Error)>();
        var links = await LinksAsync(notification, cancellationToken);
        if (channels?.WebhookUrl is { } url && stored[1].IsNullOrEmpty)
        {
            await RecordAsync(await PostAsync(url, secrets.Reveal(tenant, channels.WebhookSecret) ?? "",
                links.Count == 0 ? notification : notification with { Links = links }, cancellationToken), "webhook");
        }
        if (channels?.Smtp is { } smtp && stored[2].IsNullOrEmpty)
        {
            await RecordAsync(await MailAsync(smtp with { Password = secrets.Reveal(tenant, smtp.Password) }, notification, links, cancellationToken), "email");
        }
        if (toSlack && stored[3].IsNullOrEmpty)
        {
            await RecordAsync(await slack.PostRequestAsync(settings!, notification, cancellationToken), "slack");
        }

        if (failures.Count == 0)
        {
            var entry = Entry(notification, "notified");
            entry.Reason = $"{notification.Kind} via {string.Join(" + ", [.. ChannelsOf(channels), .. toSlack ? ["slack"] : Array.Empty<string>()])}";
            entry.Details = notification.Recipients.Count > 0 ? "to " + string.Join(", ", notification.Recipients) : null;
            await audit.AppendAsync(entry, cancellationToken);
            await ForgetAsync(tenant, id);
            metrics.Notified(tenant, "delivered");
            return;
        }

        var attempt = (int)await Db.HashIncrementAsync(bodies, id + "|attempts");
        var gaveUp = attempt >= options.Value.MaxAttempts;
        var backoff = Backoff.Exponential(attempt, TimeSpan.FromSeconds(2), options.Value.MaxBackoff);
        var now = Time.GetUtcNow();
        foreach (var (channel, error) in failures)
        {
            var failure = new NotificationFailure(id, notification.Kind, notification.ApprovalId, notification.CaseId, channel, error, attempt, gaveUp, now);
            await Db.ListLeftPushAsync(RedisKeys.NotifyFailed(tenant), JsonSerializer.Serialize(failure, AppJsonContext.Default.NotificationFailure));
        }
        await Db.ListTrimAsync(RedisKeys.NotifyFailed(tenant), 0, KeptFailures - 1);
        metrics.Notified(tenant, gaveUp ? "abandoned" : "failed");
        span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, gaveUp ? "abandoned" : "failed");
        await counters.IncrementAsync(tenant, Counters.NotificationFailures);
        var failed = Entry(notification, gaveUp ? "notification_abandoned" : "notification_failed");
        failed.Reason = string.Join("; ", failures.Select(f => $"{f.Channel}: {f.Error}")) +
                        (gaveUp ? $"; given up after {attempt} attempts" : $"; attempt {attempt}, next in {backoff.TotalSeconds:F0} s");
        failed.Details = notification.Kind;
        await audit.AppendAsync(failed, cancellationToken);
        if (gaveUp)
        {
            await ForgetAsync(tenant, id);
        }
        else
        {
            await Db.SortedSetAddAsync(RedisKeys.NotifyOutbox(tenant), id, (now + backoff).ToUnixTimeMilliseconds());
        }

        // A channel that got it is marked at once: whatever happens next, it is never sent to that channel again.
        async Task RecordAsync(string? error, string channel)
        {
            if (error is null)
            {
                await Db.HashSetAsync(bodies, id + "|" + channel, "done");
            }
            else
            {
                failures.Add((channel, error));
            }
        }
    }

    private static IEnumerable<string> ChannelsOf(NotificationSettings? channels)
    {
        if (channels?.WebhookUrl is not null)
        {
            yield return "webhook";
        }
        if (channels?.Smtp is not null)
        {
            yield return "email";
        }
    }

    private AuditEntry Entry(Notification n, string action)
    {
        var entry = audit.NewEntry(n.Tenant, "system:notifier", action);
        entry.ApprovalId = n.ApprovalId ?? n.CaseId;
        return entry;
    }

    private async Task ForgetAsync(string tenant, string id)
    {
        await Db.SortedSetRemoveAsync(RedisKeys.NotifyOutbox(tenant), id);
        await Db.HashDeleteAsync(RedisKeys.NotifyBodies(tenant), [id, id + "|webhook", id + "|email", id + "|slack", id + "|attempts"]);
    }

    /// <summary>The tenant's notifications waiting for delivery and the latest failed attempts.</summary>
    public async Task<NotificationStatus> StatusAsync(string tenant)
    {
        var pending = await Db.SortedSetLengthAsync(RedisKeys.NotifyOutbox(tenant));
        var failures = await Db.ListRangeAsync(RedisKeys.NotifyFailed(tenant), 0, 49);
        return new NotificationStatus(tenant, pending,
            [.. failures.Select(f => JsonSerializer.Deserialize((string)f!, AppJsonContext.Default.NotificationFailure)!)]);
    }
}
