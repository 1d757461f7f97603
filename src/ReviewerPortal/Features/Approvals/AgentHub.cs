using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// <c>/hubs/approvals</c>: agents (and people's API tokens) receive every transition of the tenants they can read as
/// it happens (<c>approvalChanged</c>), so a waiting agent needs no polling. The long-poll endpoint stays for clients
/// without SignalR.
/// </summary>
[Authorize(Policy = AuthSetup.ApiPolicy)]
public sealed class AgentHub(TenantAccess access, HubConnections connections, HubAccessWarden warden, HubNegotiations negotiations) : Hub
{
    public const string Path = "/hubs/approvals";
    public const string ChangedMethod = "approvalChanged";

    public static string Group(string tenant) => "tenant:" + tenant;

    public override async Task OnConnectedAsync()
    {
        if (!connections.Admit(Context))
        {
            // Over the per-key limit: this connection is closed before it joins any tenant.
            Context.Abort();
            return;
        }
        negotiations.Connected(Context.ConnectionId);
        var announced = warden.Announcements;
        foreach (var tenant in await access.ReadableTenantsAsync(Caller.From(Context.User!)))
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, Group(tenant));
            connections.Joined(Context, tenant);
        }
        if (warden.Announcements != announced)
        {
            warden.Wake(); // access changed while this connection joined: check it again
        }
        await base.OnConnectedAsync();
    }

    public override Task OnDisconnectedAsync(Exception? exception)
    {
        connections.Closed(Context);
        negotiations.Closed(Context.ConnectionId);
        return base.OnDisconnectedAsync(exception);
    }
}

/// <summary>
/// This instance's hub connections by the key they signed in with, so a revoked key's live connections end at once
/// (the revocation reaches every instance over Redis, see <see cref="AgentKeys"/>).
/// </summary>
public sealed class HubConnections(Microsoft.Extensions.Options.IOptions<ApprovalOptions> options)
{
    /// <summary>An open connection and the tenant groups it is in.</summary>
    private sealed class Entry(HubCallerContext context)
    {
        public HubCallerContext Context { get; } = context;
        public System.Collections.Immutable.ImmutableHashSet<string> Tenants = [];
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Entry> _open = new();
    private readonly Lock _admit = new();

    /// <summary>Registers the connection unless its key or account already holds the most it may here.</summary>
    public bool Admit(HubCallerContext context)
    {
        var holder = WaitSlots.HolderOf(context.User!);
        lock (_admit)
        {
            if (_open.Values.Count(e => WaitSlots.HolderOf(e.Context.User!) == holder) >= options.Value.MaxHubConnectionsPerCaller)
            {
                return false;
            }
            _open[context.ConnectionId] = new Entry(context);
            return true;
        }
    }

    public void Closed(HubCallerContext context) => _open.TryRemove(context.ConnectionId, out _);

    // A connection that closed meanwhile is not brought back by a late join or leave.
    public void Joined(HubCallerContext context, string tenant)
    {
        if (_open.TryGetValue(context.ConnectionId, out var entry))
        {
            System.Collections.Immutable.ImmutableInterlocked.Update(ref entry.Tenants, set => set.Add(tenant));
        }
    }

    public void Left(HubCallerContext context, string tenant)
    {
        if (_open.TryGetValue(context.ConnectionId, out var entry))
        {
            System.Collections.Immutable.ImmutableInterlocked.Update(ref entry.Tenants, set => set.Remove(tenant));
        }
    }

    public IReadOnlySet<string> TenantsOf(string connectionId) => _open.TryGetValue(connectionId, out var entry) ? entry.Tenants : [];

    public IReadOnlyList<HubCallerContext> Open() => [.. _open.Values.Select(e => e.Context)];

    /// <summary>Every (holder, tenant) pair this instance's connections are in the group of.</summary>
    public IReadOnlyList<(string Holder, string Tenant)> JoinedTenants() =>
        [.. _open.Values.SelectMany(e => e.Tenants.Select(t => (Caller.From(e.Context.User!).Actor, t)))];

    /// <summary>Ends every connection opened with the key of <paramref name="keyHash"/>; answers how many.</summary>
    public int Abort(string keyHash)
    {
        var ended = 0;
        foreach (var context in Open().Where(c => c.User?.FindFirst(ClaimNames.KeyHash)?.Value == keyHash))
        {
            context.Abort();
            ended++;
        }
        return ended;
    }
}

/// <summary>Open long-polls per key or account on this instance, bounded by <see cref="ApprovalOptions.MaxWaitsPerCaller"/>.</summary>
public sealed class WaitSlots(Microsoft.Extensions.Options.IOptions<ApprovalOptions> options)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _held = new(StringComparer.Ordinal);

    public int Limit => options.Value.MaxWaitsPerCaller;

    /// <summary>Who holds a wait or a connection: the bearer key it signed in with, else the account.</summary>
    public static string HolderOf(System.Security.Claims.ClaimsPrincipal user) =>
        user.FindFirst(ClaimNames.KeyHash)?.Value ?? Caller.From(user).Actor;

    public bool TryEnter(string holder)
    {
        var now = _held.AddOrUpdate(holder, 1, (_, n) => n + 1);
        if (now <= Limit)
        {
            return true;
        }
        Exit(holder);
        return false;
    }

    public void Exit(string holder) => _held.AddOrUpdate(holder, 0, (_, n) => Math.Max(0, n - 1));
}

/// <summary>Forwards the change feed of this instance to the hub's tenant groups.</summary>
public sealed class AgentHubRelay(ChangeFeed feed, IHubContext<AgentHub> hub, Observability.PortalMetrics metrics, TimeProvider time,
    ILogger<AgentHubRelay> logger) : IHostedService
{
    private IDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = feed.Subscribe(change =>
        {
            if (change.ApprovalId.Length == 0)
            {
                return; // policy events carry no approval
            }
            if (ApprovalStates.IsKnown(change.State) && !ApprovalStates.IsOpen(change.State))
            {
                metrics.AgentWoken(change.Tenant, "hub", time.GetUtcNow() - change.At);
            }
            _ = hub.Clients.Group(AgentHub.Group(change.Tenant)).SendAsync(AgentHub.ChangedMethod, change)
                .ContinueWith(t => logger.LogWarning(t.Exception, "Hub relay failed"), TaskContinuationOptions.OnlyOnFaulted);
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }
}
