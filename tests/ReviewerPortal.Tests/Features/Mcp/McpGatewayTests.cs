using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Mcp;

/// <summary>
/// The MCP gateway end to end: a real MCP client (the SDK's) calls through <c>/mcp/{upstream}</c> on the real app to a
/// real upstream MCP server; the tenant's policy, published through the API, decides each call.
/// </summary>
public sealed class McpGatewayTests : IAsyncLifetime
{
    public const string Policy = """
        version: v1
        default: require_human
        rules:
          - id: allow-mcp-read
            when: { topic: mcp.files.read }
            decision: allow
          - id: deny-mcp-wipe
            when: { topic: mcp.files.wipe }
            decision: deny
          - id: throttle-mcp-email
            when: { topic: mcp.files.email }
            decision: throttle
            rate: 1/hour
          - id: allow-mcp-scripts
            when: { topic: "mcp.scripts.*" }
            decision: allow
          - id: mcp-pay-needs-a-human
            when: { topic: mcp.files.pay, channel: mcp }
            decision: require_human
        """;

    private TestUpstream _upstream = null!;
    private TestApp _app = null!;

    public async Task InitializeAsync()
    {
        _upstream = await TestUpstream.StartAsync();
        _app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["McpGateway:Upstreams:files:Url"] = _upstream.Url,
            ["McpGateway:Upstreams:files:Tenants:0"] = "acme",
            ["McpGateway:Upstreams:down:Url"] = $"http://127.0.0.1:{ClosedPort()}/mcp",
            ["McpGateway:Upstreams:down:Tenants:0"] = "acme",
            ["McpGateway:Upstreams:scripts:Command"] = "python3",
            ["McpGateway:Upstreams:scripts:Arguments:0"] = Path.Combine(AppContext.BaseDirectory, "Features", "Mcp", "stdio_upstream.py"),
            ["McpGateway:Upstreams:scripts:Tenants:0"] = "acme",
            ["McpGateway:ProgressInterval"] = "00:00:00.200",
        });
        var published = await _app.Account("ada").PutAsync("/api/v1/tenants/acme/policy", new StringContent(Policy, Encoding.UTF8, "application/yaml"));
        Assert.True(published.IsSuccessStatusCode, await published.Content.ReadAsStringAsync());
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _upstream.DisposeAsync();
    }

    [Fact]
    public async Task Tools_list_passes_the_upstreams_tools_through()
    {
        await using var client = await ConnectAsync("files");

        var tools = await client.ListToolsAsync();

        Assert.Equal(["email", "pay", "read", "wipe"], tools.Select(t => t.Name).Order());
        Assert.Equal("Pays an invoice.", tools.Single(t => t.Name == "pay").Description);
    }

    [Fact]
    public async Task An_allowed_call_is_forwarded_and_the_upstreams_result_returned_as_it_is()
    {
        await using var client = await ConnectAsync("files");

        var result = await client.CallToolAsync("read", new Dictionary<string, object?> { ["path"] = "/etc/motd" });

        Assert.NotEqual(true, result.IsError);
        Assert.Equal("""read ran with {"path":"/etc/motd"}""", Text(result));
        Assert.Equal(1, _upstream.CallsOf("read"));
    }

    [Fact]
    public async Task A_denied_call_is_a_tool_error_naming_the_rule_and_never_reaches_the_upstream()
    {
        await using var client = await ConnectAsync("files");

        var result = await client.CallToolAsync("wipe", new Dictionary<string, object?> { ["all"] = true });

        Assert.True(result.IsError);
        Assert.Contains("deny-mcp-wipe", Text(result));
        Assert.Equal(0, _upstream.CallsOf("wipe"));
    }

    [Fact]
    public async Task A_throttled_call_is_a_tool_error_saying_when_to_retry()
    {
        await using var client = await ConnectAsync("files");

        var first = await client.CallToolAsync("email", new Dictionary<string, object?> { ["to"] = "a@example.com" });
        var second = await client.CallToolAsync("email", new Dictionary<string, object?> { ["to"] = "b@example.com" });

        Assert.NotEqual(true, first.IsError);
        Assert.True(second.IsError);
        Assert.Contains("throttle-mcp-email", Text(second));
        Assert.Matches(@"retry in \d+ s", Text(second));
        Assert.Equal(1, _upstream.CallsOf("email"));
    }

    [Fact]
    public async Task An_approved_call_is_forwarded_once_with_the_approved_arguments_even_when_retried_and_approved_twice()
    {
        await using var client = await ConnectAsync("files");
        var progress = new ProgressLog();
        var arguments = new Dictionary<string, object?> { ["invoice"] = "INV-9", ["amount"] = 420 };

        var call = Call(client, "pay", arguments, "pay-INV-9", progress);
        var approval = await PendingAsync("pay-INV-9");
        Assert.Equal("mcp", approval.GetProperty("job").Str("channel"));
        Assert.Equal("mcp.files.pay", approval.GetProperty("job").Str("topic"));
        Assert.Equal(420, approval.GetProperty("job").GetProperty("payload").GetProperty("amount").GetInt32());
        Assert.False(call.IsCompleted);
        await progress.SeenAsync(); // while it waits, progress keeps the client's timeout from firing

        Assert.Equal(HttpStatusCode.OK, (await _app.Account("alice").Approve(approval.Str("id"))).StatusCode);
        var again = await _app.Account("alice").Approve(approval.Str("id"));
        Assert.Equal("already_approved", (await again.Json()).Str("result"));
        var result = await call;

        Assert.NotEqual(true, result.IsError);
        Assert.Equal("""pay ran with {"invoice":"INV-9","amount":420}""", Text(result));
        // A retry of the same call, on a new connection, returns the first result: the tool does not run again.
        await using var other = await ConnectAsync("files");
        var retried = await Call(other, "pay", arguments, "pay-INV-9");
        Assert.Equal(Text(result), Text(retried));
        Assert.Equal(1, _upstream.CallsOf("pay"));
        Assert.Single(_upstream.Calls, c => c.Tool == "pay" && c.Arguments == """{"invoice":"INV-9","amount":420}""");
    }

    [Fact]
    public async Task A_rejected_call_is_a_tool_error_carrying_the_reviewers_reason()
    {
        await using var client = await ConnectAsync("files");

        var call = Call(client, "pay", new Dictionary<string, object?> { ["invoice"] = "INV-666", ["amount"] = 9000 }, "pay-INV-666");
        var approval = await PendingAsync("pay-INV-666");
        await _app.Account("alice").Reject(approval.Str("id"), new { reason = "vendor is not on the approved list" });
        var result = await call;

        Assert.True(result.IsError);
        Assert.Contains("rejected by alice: vendor is not on the approved list", Text(result));
        Assert.Equal(0, _upstream.CallsOf("pay"));
    }

    [Fact]
    public async Task A_client_that_drops_while_waiting_attaches_to_the_same_approval_when_it_retries()
    {
        var arguments = new Dictionary<string, object?> { ["invoice"] = "INV-77", ["amount"] = 77 };
        using var drop = new CancellationTokenSource();
        var first = await ConnectAsync("files");
        var call = Call(first, "pay", arguments, "pay-INV-77", cancellationToken: drop.Token);
        var approval = await PendingAsync("pay-INV-77");
        await drop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await first.DisposeAsync();

        await using var second = await ConnectAsync("files");
        var retried = Call(second, "pay", arguments, "pay-INV-77");
        var pending = await PendingListAsync();
        Assert.Single(pending, a => a.TryGetProperty("idempotencyKey", out var k) && k.GetString() == "pay-INV-77");
        Assert.Equal(approval.Str("id"), (await PendingAsync("pay-INV-77")).Str("id"));
        await _app.Account("alice").Approve(approval.Str("id"));
        var result = await retried;

        Assert.NotEqual(true, result.IsError);
        Assert.Equal(1, _upstream.CallsOf("pay"));
    }

    [Fact]
    public async Task The_same_JSON_RPC_id_retried_in_the_same_session_attaches_to_the_same_approval()
    {
        using var http = _app.Agent("acme");
        var initialized = await Initialize(http, "files");
        var session = initialized.Headers.GetValues("Mcp-Session-Id").Single();
        (await Rpc(http, session, new { jsonrpc = "2.0", method = "notifications/initialized" })).Dispose();
        var call = new { jsonrpc = "2.0", id = 41, method = "tools/call", @params = new { name = "pay", arguments = new { invoice = "INV-41", amount = 41 } } };

        var first = await Rpc(http, session, call);
        var reading = first.Content.ReadAsStringAsync();
        var approval = await PendingAsync(a => a.GetProperty("job").GetProperty("payload").Str("invoice") == "INV-41");
        first.Dispose(); // the client drops the connection while the call waits
        try
        {
            // Usually the read fails with the dropped connection; whatever it got, the tool had not run unapproved.
            Assert.DoesNotContain("pay ran with", await reading);
        }
        catch (Exception ex) when (ex is IOException or HttpRequestException or ObjectDisposedException or OperationCanceledException)
        {
        }
        Assert.Equal(0, _upstream.CallsOf("pay"));
        using var second = await Rpc(http, session, call);
        await _app.Account("alice").Approve(approval.Str("id"));
        var body = await second.Content.ReadAsStringAsync().WaitAsync(TimeSpan.FromMinutes(2)); // bounded: a second approval would wait forever

        Assert.Contains("pay ran with", body);
        Assert.Equal(1, await _app.AuditCountAsync(null, "submitted")); // one approval, however often the call came
        Assert.Equal(1, _upstream.CallsOf("pay"));
    }

    [SkippableFact]
    public async Task A_stdio_upstream_that_dies_is_started_again_on_the_next_call()
    {
        Skip.IfNot(File.Exists("/usr/bin/python3") || File.Exists("/usr/local/bin/python3"), "python3 runs the stdio test upstream");
        await using var client = await ConnectAsync("scripts");

        var before = await client.CallToolAsync("whoami", new Dictionary<string, object?>());
        var died = await client.CallToolAsync("die", new Dictionary<string, object?>());
        var after = await client.CallToolAsync("whoami", new Dictionary<string, object?>());

        Assert.NotEqual(true, before.IsError);
        Assert.StartsWith("pid ", Text(before));
        Assert.True(died.IsError);
        Assert.NotEqual(true, after.IsError);
        Assert.StartsWith("pid ", Text(after));
        Assert.NotEqual(Text(before), Text(after)); // a new process
    }

    [Fact]
    public async Task Another_tenants_key_gets_404_as_for_an_upstream_that_does_not_exist()
    {
        using var globex = _app.Agent("globex");
        using var acme = _app.Agent("acme");

        var other = await Initialize(globex, "files");
        var missing = await Initialize(acme, "nothing-here");
        var person = await Initialize(_app.Account("ada"), "files");

        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, person.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Initialize(acme, "files")).StatusCode);
    }

    [Fact]
    public async Task A_call_without_a_key_gets_401()
    {
        using var anonymous = _app.CreateClient();

        var response = await Initialize(anonymous, "files");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task An_upstream_that_is_down_is_a_tool_error_and_nothing_is_queued()
    {
        await using var client = await ConnectAsync("down");

        var result = await client.CallToolAsync("pay", new Dictionary<string, object?> { ["invoice"] = "INV-0", ["amount"] = 1 });

        Assert.True(result.IsError);
        Assert.Contains("unavailable", Text(result));
        Assert.DoesNotContain(await PendingListAsync(), a => a.GetProperty("job").Str("topic") == "mcp.down.pay");
        Assert.Equal(0, await _app.AuditCountAsync(null, "submitted"));
    }

    // ------------------------------------------------------------------ helpers

    private Task<McpClient> ConnectAsync(string upstream) => ConnectAsync(_app, upstream);

    internal static async Task<McpClient> ConnectAsync(TestApp app, string upstream, string token = "demo-acme-agent")
    {
        var http = app.WithToken(token);
        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = new Uri(http.BaseAddress!, "/mcp/" + upstream),
            TransportMode = HttpTransportMode.StreamableHttp,
        }, http, NullLoggerFactory.Instance, ownsHttpClient: true);
        return await McpClient.CreateAsync(transport, new McpClientOptions(), NullLoggerFactory.Instance);
    }

    internal static Task<CallToolResult> Call(McpClient client, string tool, IReadOnlyDictionary<string, object?> arguments, string key,
        IProgress<ProgressNotificationValue>? progress = null, CancellationToken cancellationToken = default) =>
        client.CallToolAsync(tool, arguments, progress, new RequestOptions
        {
            Meta = new JsonObject { ["reviewerportal/idempotencyKey"] = key },
        }, cancellationToken).AsTask();

    private static Task<HttpResponseMessage> Initialize(HttpClient http, string upstream)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp/" + upstream)
        {
            Content = JsonContent.Create(new
            {
                jsonrpc = "2.0",
                id = 1,
                method = "initialize",
                @params = new { protocolVersion = "2025-11-25", capabilities = new { }, clientInfo = new { name = "t", version = "1" } },
            }),
        };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        return http.SendAsync(request);
    }

    private Task<JsonElement[]> PendingListAsync() => PendingListAsync(_app);

    private static Task<HttpResponseMessage> Rpc(HttpClient http, string session, object message, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/mcp/files") { Content = JsonContent.Create(message) };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        request.Headers.Add("Mcp-Session-Id", session);
        request.Headers.Add("MCP-Protocol-Version", "2025-11-25");
        return http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    private async Task<JsonElement> PendingAsync(Func<JsonElement, bool> match)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            if ((await PendingListAsync()).Where(match).ToList() is { Count: > 0 } found)
            {
                return Assert.Single(found);
            }
            await Task.Delay(50);
        }
        throw new TimeoutException("No such pending approval.");
    }

    internal static async Task<JsonElement[]> PendingListAsync(TestApp app)
    {
        var list = await (await app.Account("alice").GetAsync("/api/v1/approvals?tenant=acme&state=pending&limit=100")).Json();
        return [.. list.GetProperty("items").EnumerateArray()];
    }

    /// <summary>The pending approval submitted with <paramref name="key"/>, once the gateway has parked it.</summary>
    private Task<JsonElement> PendingAsync(string key) => PendingAsync(_app, key);

    internal static async Task<JsonElement> PendingAsync(TestApp app, string key)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var found = (await PendingListAsync(app)).Where(a => a.TryGetProperty("idempotencyKey", out var k) && k.GetString() == key).ToList();
            if (found.Count > 0)
            {
                return Assert.Single(found);
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"No pending approval with key {key}.");
    }

    internal static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Select(b => b.Text));

    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private sealed class ProgressLog : IProgress<ProgressNotificationValue>
    {
        private readonly TaskCompletionSource _seen = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Report(ProgressNotificationValue value) => _seen.TrySetResult();

        public Task SeenAsync() => _seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
