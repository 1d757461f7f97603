using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Mcp;

/// <summary>
/// The MCP gateway's handlers. <c>tools/list</c> passes through; every <c>tools/call</c> is submitted as a job through
/// <see cref="ApprovalService"/> (topic <c>mcp.{upstream}.{tool}</c>, channel <c>mcp</c>, the arguments as payload) and
/// forwarded only when the tenant's policy allows it or a reviewer approved it. An approved call is forwarded once:
/// its result is recorded in Redis under the approval (the side-effect key <c>fx:{approval}:mcp</c>), and every retry
/// (on any instance) answers with that first result.
/// </summary>
public sealed class McpGateway(
    ApprovalService approvals,
    McpUpstreamPool pool,
    RedisConnection redis,
    IOptions<McpGatewayOptions> options,
    TimeProvider time,
    ILogger<McpGateway> logger)
{
    public const string Channel = "mcp";
    public const string IdempotencyMetaKey = "reviewerportal/idempotencyKey";
    private const string RecordAction = "mcp";
    private static readonly TimeSpan RecordLifetime = TimeSpan.FromDays(90);

    /// <summary>Whether <paramref name="user"/> (an agent) may use <paramref name="upstream"/>; anyone else sees it as missing.</summary>
    public bool MayUse(ClaimsPrincipal? user, string? upstream, out McpUpstreamOptions entry)
    {
        entry = null!;
        if (user is null || upstream is null || !options.Value.Upstreams.TryGetValue(upstream, out var found))
        {
            return false;
        }
        var caller = Caller.From(user);
        entry = found;
        return caller.IsAgent && caller.AgentTenant is { } tenant && found.Tenants.Contains(tenant, StringComparer.Ordinal);
    }

    public async ValueTask<ListToolsResult> ListToolsAsync(string upstream, RequestContext<ListToolsRequestParams> request, CancellationToken cancellationToken)
    {
        Authorise(upstream, request.User, out _);
        McpClient client;
        try
        {
            client = await pool.GetAsync(upstream, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "MCP upstream {Upstream} is unavailable", upstream);
            throw new McpProtocolException($"The upstream '{upstream}' is unavailable.", McpErrorCode.InternalError);
        }
        try
        {
            return await client.ListToolsAsync(request.Params ?? new ListToolsRequestParams(), cancellationToken);
        }
        catch (Exception ex) when (ex is not McpProtocolException && (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested))
        {
            await pool.ResetAsync(upstream, client);
            throw new McpProtocolException($"The upstream '{upstream}' failed: {ex.Message}", McpErrorCode.InternalError);
        }
    }

    public async ValueTask<CallToolResult> CallToolAsync(string upstream, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var caller = Authorise(upstream, request.User, out var entry);
        var tenant = caller.AgentTenant!;
        var parameters = request.Params ?? throw new McpProtocolException("Missing params.", McpErrorCode.InvalidParams);
        var topic = $"mcp.{upstream}.{parameters.Name}";

        var payload = Payload(parameters.Arguments);
        var errors = JobsApi.Validate(new SubmitJobRequest { Topic = topic, Env = entry.Env, Channel = Channel, Payload = payload }, null);
        var idempotencyKey = IdempotencyKeyOf(request);
        JobsApi.ValidateIdempotencyKey(idempotencyKey, errors);
        if (errors.Count > 0)
        {
            return Error(string.Join(" ", errors.Select(e => $"{(e.Key == "topic" ? "tool name" : e.Key)}: {string.Join(" ", e.Value)}")));
        }

        // Nothing is queued for an upstream that cannot be reached.
        if (await ConnectAsync(upstream, cancellationToken) is not { } reachable)
        {
            return Error($"The upstream '{upstream}' is unavailable; nothing was submitted. Try again later.");
        }

        var job = new JobRequest(topic, entry.Env, Channel, "normal", payload);
        var outcome = await approvals.SubmitAsync(caller, idempotencyKey, job, cancellationToken);
        switch (outcome.Kind)
        {
            case SubmitKind.Allowed:
                return await ForwardOnceAsync(upstream, reachable, tenant, outcome.Job!.Id, parameters.Name, payload, cancellationToken);
            case SubmitKind.Denied:
                return Error($"Denied by the policy of tenant '{tenant}' (rule {outcome.RuleId ?? "(default)"}); '{topic}' was not run.");
            case SubmitKind.Throttled:
                var seconds = Math.Max(1, (int)Math.Ceiling(outcome.RetryAfter!.Value.TotalSeconds));
                return Error($"Throttled by the policy of tenant '{tenant}' (rule {outcome.RuleId}); retry in {seconds} s " +
                    $"(after {(time.GetUtcNow() + TimeSpan.FromSeconds(seconds)).ToString("O", CultureInfo.InvariantCulture)}).");
            case SubmitKind.Parked:
                return await WaitAndForwardAsync(upstream, caller, outcome.Approval!, request, cancellationToken);
            default:
                return Error(outcome.Detail ?? "The call could not be submitted.");
        }
    }

    private Caller Authorise(string upstream, ClaimsPrincipal? user, out McpUpstreamOptions entry)
    {
        // The endpoint guard answered 404 already; a session reused on another route is checked again here.
        if (!MayUse(user, upstream, out entry))
        {
            throw new McpProtocolException($"No MCP upstream '{upstream}'.", McpErrorCode.InvalidRequest);
        }
        return Caller.From(user!);
    }

    private async Task<McpClient?> ConnectAsync(string upstream, CancellationToken cancellationToken)
    {
        try
        {
            return await pool.GetAsync(upstream, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(ex, "MCP upstream {Upstream} is unavailable", upstream);
            return null;
        }
    }

    /// <summary>The caller's key (<c>_meta["reviewerportal/idempotencyKey"]</c>), else one from the MCP session and the JSON-RPC id.</summary>
    private static string? IdempotencyKeyOf(RequestContext<CallToolRequestParams> request)
    {
        if (request.Params?.Meta?[IdempotencyMetaKey] is JsonValue value && value.TryGetValue<string>(out var given))
        {
            return given;
        }
        var session = request.Server.SessionId;
        if (string.IsNullOrEmpty(session))
        {
            return null;
        }
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(session + "\n" + request.JsonRpcRequest.Id.ToString()));
        return "mcp:" + Convert.ToHexStringLower(digest)[..40];
    }

    private static JsonElement Payload(IDictionary<string, JsonElement>? arguments)
    {
        var payload = new JsonObject();
        foreach (var (name, value) in arguments ?? new Dictionary<string, JsonElement>())
        {
            payload[name] = JsonNode.Parse(value.GetRawText());
        }
        return JsonSerializer.SerializeToElement(payload, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(JsonObject)));
    }

    private async Task<CallToolResult> WaitAndForwardAsync(string upstream, Caller caller, Approval parked,
        RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var progressToken = request.Params?.ProgressToken;
        var step = 0;
        var approval = parked;
        while (approval.State == ApprovalStates.Pending)
        {
            if (progressToken is { } token)
            {
                // Clients that reset their timeout on progress keep waiting as long as the approval lives.
                await request.Server.NotifyProgressAsync(token, new ProgressNotificationValue
                {
                    Progress = ++step,
                    Message = $"Waiting for a reviewer: approval {approval.Id} ({approval.Job.Topic}), expires {approval.ExpiresAt.ToString("O", CultureInfo.InvariantCulture)}.",
                }, cancellationToken: cancellationToken);
            }
            approval = await approvals.WaitForDecisionAsync(caller, parked.Id, options.Value.ProgressInterval, cancellationToken)
                ?? throw new McpProtocolException($"Approval {parked.Id} no longer exists.", McpErrorCode.InternalError);
        }
        if (approval.State != ApprovalStates.Approved)
        {
            var by = approval.DecidedBy is { Length: > 0 } who ? $" by {who}" : "";
            var reason = approval.State == ApprovalStates.ChangesRequested ? approval.ChangesReason : approval.Reason;
            return Error($"Approval {approval.Id} was {approval.State.Replace('_', ' ')}{by}: {(string.IsNullOrWhiteSpace(reason) ? "no reason given" : reason)}. " +
                $"'{approval.Job.Topic}' was not run.");
        }
        // Exactly what was approved, and only if it still hashes to what the reviewer saw.
        if (JobHasher.Hash(approval.Tenant, approval.Job) != approval.JobHash
            || approval.Job.Channel != Channel || approval.Job.Topic != $"mcp.{upstream}.{request.Params!.Name}")
        {
            logger.LogError("Approval {ApprovalId} does not match its job hash; the call is not forwarded", approval.Id);
            return Error($"Approval {approval.Id} does not match its job hash; '{approval.Job.Topic}' was not run.");
        }
        if (await ConnectAsync(upstream, cancellationToken) is not { } client)
        {
            return Error($"Approval {approval.Id} is approved but the upstream '{upstream}' is unavailable; call again to run it.");
        }
        return await ForwardOnceAsync(upstream, client, approval.Tenant, approval.Id, request.Params!.Name, approval.Job.Payload, cancellationToken);
    }

    /// <summary>
    /// Forwards the call unless it was forwarded before under <paramref name="recordId"/> (an approval or an allowed job):
    /// the first caller claims the record, calls the upstream and stores its result; any other caller (a retry, another
    /// instance) returns that result. A call started but never recorded (the instance stopped) is answered as unknown.
    /// </summary>
    private async Task<CallToolResult> ForwardOnceAsync(string upstream, McpClient client, string tenant, string recordId, string tool,
        JsonElement arguments, CancellationToken cancellationToken)
    {
        var key = RedisKeys.SideEffect(tenant, recordId, RecordAction);
        var db = redis.Database;
        var claim = JsonSerializer.Serialize(new ForwardRecord("running", time.GetUtcNow().ToUnixTimeMilliseconds(), null), RecordJson);
        if (await db.StringSetAsync(key, claim, RecordLifetime, When.NotExists))
        {
            var result = await CallUpstreamAsync(upstream, client, tool, arguments);
            await db.StringSetAsync(key, JsonSerializer.Serialize(new ForwardRecord("done", time.GetUtcNow().ToUnixTimeMilliseconds(),
                JsonSerializer.SerializeToElement(result, McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult)))), RecordJson), RecordLifetime);
            return result;
        }
        while (true)
        {
            var stored = (string?)await db.StringGetAsync(key);
            var record = stored is null ? null : JsonSerializer.Deserialize(stored, RecordJson);
            if (record is { State: "done", Result: { } done })
            {
                return (CallToolResult)done.Deserialize(McpJsonUtilities.DefaultOptions.GetTypeInfo(typeof(CallToolResult)))!;
            }
            var started = DateTimeOffset.FromUnixTimeMilliseconds(record?.At ?? 0);
            if (record is null || time.GetUtcNow() - started > options.Value.CallTimeout + TimeSpan.FromSeconds(30))
            {
                return Error($"The approved call {recordId} was started at {started:O} but its result was never recorded; it is not run again.");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken);
        }
    }

    private async Task<CallToolResult> CallUpstreamAsync(string upstream, McpClient client, string tool, JsonElement arguments)
    {
        // Once started, the call runs to its end even if the caller goes away: its result is what a retry gets.
        using var timeout = new CancellationTokenSource(options.Value.CallTimeout, time);
        try
        {
            return await client.CallToolAsync(new CallToolRequestParams
            {
                Name = tool,
                Arguments = arguments.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()),
            }, timeout.Token);
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "MCP upstream {Upstream} failed the call of {Tool}", upstream, tool);
            if (ex is not McpProtocolException)
            {
                await pool.ResetAsync(upstream, client);
            }
            return Error($"The upstream '{upstream}' failed the call of '{tool}': {ex.Message}. It is not run again.");
        }
    }

    private static CallToolResult Error(string message) => new()
    {
        IsError = true,
        Content = [new TextContentBlock { Text = message }],
    };

    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo<ForwardRecord> RecordJson =
        Infrastructure.Json.AppJsonContext.Default.ForwardRecord;
}

/// <summary>What the gateway recorded for one forwarded call: <c>running</c> (claimed) or <c>done</c> with the upstream's result.</summary>
public sealed record ForwardRecord(string State, long At, JsonElement? Result);
