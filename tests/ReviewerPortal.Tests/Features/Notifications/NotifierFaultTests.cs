using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Notifications;

/// <summary>A notification that cannot be read never stops another tenant's (or its own tenant's other) notifications.</summary>
public sealed class NotifierFaultTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero));
    private TestApp _app = null!;

    public async Task InitializeAsync() =>
        _app = await TestApp.StartAsync(_clock, settings: new Dictionary<string, string?> { ["Notifications:Enabled"] = "false" });

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task A_damaged_notification_is_audited_retried_later_and_blocks_nobody()
    {
        await using var webhook = WebhookReceiver.Start();
        foreach (var tenant in new[] { "acme", "globex" })
        {
            await Workflow.SetAsync(_app, new { notifications = new { webhookUrl = webhook.Url, webhookSecret = "s3cret-s3cret-s3cret" } }, tenant);
        }
        var redis = _app.Services.GetRequiredService<RedisConnection>().Database;
        // A body that cannot be read, due before everything else in acme.
        await redis.HashSetAsync(RedisKeys.NotifyBodies("acme"), "ntf_poison", "{not json");
        await redis.SortedSetAddAsync(RedisKeys.NotifyOutbox("acme"), "ntf_poison", 0);
        var acme = (await _app.Agent("acme").SubmitPayment()).Str("approvalId");
        var globex = (await _app.Agent("globex").SubmitPayment()).Str("approvalId");

        await _app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        var delivered = webhook.Requests.Select(r => JsonDocument.Parse(r.Body).RootElement.Str("approvalId")).ToList();
        Assert.Contains(acme, delivered);
        Assert.Contains(globex, delivered);
        Assert.Equal(1, await _app.AuditCountAsync(null, "notification_error"));
        var retryAt = await redis.SortedSetScoreAsync(RedisKeys.NotifyOutbox("acme"), "ntf_poison");
        Assert.True(retryAt > _clock.GetUtcNow().ToUnixTimeMilliseconds());
    }
}
