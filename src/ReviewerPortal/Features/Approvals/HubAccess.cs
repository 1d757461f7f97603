using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// Announces to every instance that who may read a tenant changed (its approvers or escalation levels were saved), so
/// live hub connections are re-checked at once rather than when they reconnect.
/// </summary>
public sealed class AccessChanges(RedisConnection redis, ILogger<AccessChanges> logger)
{
    public static RedisChannel Channel { get; } = RedisChannel.Literal("rp:access-changed");

    public async Task AnnounceAsync(string tenant)
    {
        try
        {
            await redis.Multiplexer.GetSubscriber().PublishAsync(Channel, tenant);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // The periodic sweep (Approvals:HubAccessSweep) catches up on every instance.
            logger.LogWarning(ex, "Access change of tenant {Tenant} could not be announced; hub connections are re-checked by the next sweep", tenant);
        }
    }
}

/// <summary>
/// Keeps each hub connection in exactly the tenant groups its key or token may read now: on every announced access
/// change, and on a periodic sweep for changes made behind the app's back (a role edited in the database). A key or
/// token that no longer exists ends its connections; a reviewer taken off a tenant leaves that tenant's group (and joins
/// one they were added to) without reconnecting.
/// </summary>
public sealed class HubAccessWarden(
    RedisConnection redis,
    HubConnections connections,
    ApiKeyPrincipals principals,
    TenantAccess access,
    IHubContext<AgentHub> hub,
    IOptions<ApprovalOptions> options,
    TimeProvider time,
    ILogger<HubAccessWarden> logger) : BackgroundService
{
    private readonly SemaphoreSlim _pass = new(1, 1);
    private readonly Infrastructure.Timers.WakeSignal _wake = new();
    private long _announcements;

    /// <summary>How many access changes this instance has heard of (a connection joining compares it before and after).</summary>
    public long Announcements => Interlocked.Read(ref _announcements);

    /// <summary>Asks for a re-check of every connection here (coalesced with one already asked for).</summary>
    public void Wake() => _wake.Wake();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var queue = await redis.Multiplexer.GetSubscriber().SubscribeAsync(AccessChanges.Channel);
        queue.OnMessage(_ =>
        {
            Interlocked.Increment(ref _announcements);
            Wake();
        });
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await _wake.WaitAsync(options.Value.HubAccessSweep, time, stoppingToken);
                await RecheckAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await RedisConnection.UnsubscribeQuietlyAsync(redis, AccessChanges.Channel);
        }
    }

    /// <summary>One pass over this instance's connections; a failure on one connection leaves the others checked.</summary>
    public async Task RecheckAsync(CancellationToken cancellationToken)
    {
        await _pass.WaitAsync(cancellationToken);
        try
        {
            var now = new Dictionary<string, System.Security.Claims.ClaimsPrincipal?>(StringComparer.Ordinal);
            foreach (var context in connections.Open())
            {
                try
                {
                    await RecheckAsync(context, now, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Re-checking hub connection {ConnectionId} failed; closing it", context.ConnectionId);
                    context.Abort(); // fail closed: the client reconnects and is checked afresh
                }
            }
        }
        finally
        {
            _pass.Release();
        }
    }

    private async Task RecheckAsync(HubCallerContext context, Dictionary<string, System.Security.Claims.ClaimsPrincipal?> now,
        CancellationToken cancellationToken)
    {
        var keyHash = context.User?.FindFirst(ClaimNames.KeyHash)?.Value;
        if (keyHash is null)
        {
            context.Abort();
            return;
        }
        if (!now.TryGetValue(keyHash, out var principal))
        {
            now[keyHash] = principal = await principals.LoadAsync(keyHash, cancellationToken);
        }
        if (principal is null)
        {
            context.Abort(); // revoked, or the account is gone
            return;
        }
        var readable = (await access.ReadableTenantsAsync(Caller.From(principal))).ToHashSet(StringComparer.Ordinal);
        var joined = connections.TenantsOf(context.ConnectionId);
        foreach (var tenant in joined.Except(readable))
        {
            await hub.Groups.RemoveFromGroupAsync(context.ConnectionId, AgentHub.Group(tenant), cancellationToken);
            connections.Left(context, tenant);
        }
        foreach (var tenant in readable.Except(joined))
        {
            await hub.Groups.AddToGroupAsync(context.ConnectionId, AgentHub.Group(tenant), cancellationToken);
            connections.Joined(context, tenant);
        }
    }
}

/// <summary>
/// Hub negotiations per key or account and minute on this instance (<see cref="ApprovalOptions.MaxHubNegotiationsPerMinute"/>):
/// each negotiation reserves a connection until it times out, so one key could otherwise pile up thousands. Each
/// connection token is bound to the key or account that negotiated it: presented with other credentials it is unknown.
/// </summary>
public sealed class HubNegotiations(IOptions<ApprovalOptions> options, TimeProvider time)
{
    private static readonly TimeSpan Unconnected = TimeSpan.FromMinutes(5);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (long Minute, int Count)> _counts = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Binding> _tokens = new(StringComparer.Ordinal);

    private sealed record Binding(string Holder, string ConnectionId, DateTimeOffset At)
    {
        public volatile bool Connected;
    }

    /// <summary>Admits one more negotiation of <paramref name="holder"/>, or answers how long until the next is admitted.</summary>
    public TimeSpan? TryAdmit(string holder)
    {
        var now = time.GetUtcNow();
        var minute = now.ToUnixTimeSeconds() / 60;
        var (_, count) = _counts.AddOrUpdate(holder, _ => (minute, 1), (_, c) => c.Minute == minute ? (minute, c.Count + 1) : (minute, 1));
        if (_counts.Count > 10_000)
        {
            foreach (var stale in _counts.Where(c => c.Value.Minute < minute).Select(c => c.Key))
            {
                _counts.TryRemove(stale, out _);
            }
        }
        return count <= Limit
            ? null
            : DateTimeOffset.FromUnixTimeSeconds((minute + 1) * 60) - now;
    }

    private int Limit => options.Value.MaxHubNegotiationsPerMinute;

    private void Bind(string token, string connectionId, string holder)
    {
        var now = time.GetUtcNow();
        foreach (var (stale, _) in _tokens.Where(t => !t.Value.Connected && now - t.Value.At > Unconnected))
        {
            _tokens.TryRemove(stale, out _);
        }
        _tokens[token] = new Binding(holder, connectionId, now);
    }

    private bool IsBound(string token, string holder) => _tokens.TryGetValue(token, out var binding) && binding.Holder == holder;

    /// <summary>The connection started: its token stays bound until it closes.</summary>
    public void Connected(string connectionId)
    {
        foreach (var binding in _tokens.Values.Where(b => b.ConnectionId == connectionId))
        {
            binding.Connected = true;
        }
    }

    public void Closed(string connectionId)
    {
        foreach (var (token, _) in _tokens.Where(t => t.Value.ConnectionId == connectionId))
        {
            _tokens.TryRemove(token, out _);
        }
    }

    /// <summary>
    /// Wraps the hub's endpoints: a negotiation over the limit answers 429 with Retry-After and a problem document; a
    /// negotiated token is bound to its holder; a connection request whose token another holder negotiated answers 404.
    /// </summary>
    public static void Guard(EndpointBuilder endpoint)
    {
        var next = endpoint.RequestDelegate!;
        endpoint.RequestDelegate = async context =>
        {
            var self = context.RequestServices.GetRequiredService<HubNegotiations>();
            var holder = context.User.Identity?.IsAuthenticated == true ? WaitSlots.HolderOf(context.User) : null;
            if (holder is null)
            {
                await next(context); // the hub's authorization answers 401
                return;
            }
            if (context.Request.Path.Value?.EndsWith("/negotiate", StringComparison.Ordinal) == true)
            {
                if (self.TryAdmit(holder) is { } wait)
                {
                    context.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                    await Infrastructure.Http.Problems.Of(StatusCodes.Status429TooManyRequests, "too_many_hub_negotiations",
                        $"At most {self.Limit} hub negotiations a minute per key or account.")
                        .ExecuteAsync(context);
                    return;
                }
                await NegotiateAsync(context, next, (token, id) => self.Bind(token, id, holder));
                return;
            }
            if (context.Request.Query["id"] is { Count: 1 } id && !self.IsBound(id.ToString(), holder))
            {
                await Infrastructure.Http.Problems.NotFound("connection").ExecuteAsync(context);
                return;
            }
            await next(context);
        };
    }

    /// <summary>Runs the negotiation with its (small) answer buffered, to read the token it hands out.</summary>
    private static async Task NegotiateAsync(HttpContext context, RequestDelegate next, Action<string, string> bind)
    {
        var original = context.Response.Body;
        using var buffer = new MemoryStream();
        context.Response.Body = buffer;
        try
        {
            await next(context);
        }
        finally
        {
            context.Response.Body = original;
        }
        if (context.Response.StatusCode == StatusCodes.Status200OK && buffer.Length > 0)
        {
            using var answer = System.Text.Json.JsonDocument.Parse(buffer.ToArray());
            if (answer.RootElement.TryGetProperty("connectionToken", out var token) && answer.RootElement.TryGetProperty("connectionId", out var id))
            {
                bind(token.GetString()!, id.GetString()!);
            }
            else if (answer.RootElement.TryGetProperty("connectionId", out var only))
            {
                bind(only.GetString()!, only.GetString()!); // negotiate version 0: the id is the token
            }
        }
        buffer.Position = 0;
        await buffer.CopyToAsync(original, context.RequestAborted);
    }
}
