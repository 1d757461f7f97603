using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace ReviewerPortal.Load;

/// <summary>
/// One reviewer tab without a browser: a Blazor Server circuit driven over its SignalR hub (<c>/_blazor</c>) the way
/// <c>blazor.web.js</c> drives it. It starts the circuit from a prerendered page (its component markers and state),
/// acknowledges every render batch (an unacknowledged circuit stops sending after 10), answers the server's JS calls
/// as a page would (none of the queue's calls need a real value), and gives the queue's <c>Virtualize</c> a viewport
/// the height of the browser tabs' (2,400 px). It notes when each approval id first arrives in a render batch: the
/// server's cost and latency for a tab, without a browser's layout and paint on the same two cores.
/// </summary>
public sealed partial class BlazorCircuit : IAsyncDisposable
{
    /// <summary>The viewport height given to <c>Virtualize</c>, as the chromium tabs' (1280 × 2400).</summary>
    private const int ViewportHeight = 2400;

    private readonly HubConnection _connection;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _circuitId;
    private long _dotNetCalls;

    private BlazorCircuit(HubConnection connection, HttpClient http)
    {
        _connection = connection;
        _http = http;
    }

    /// <summary>When each approval id first arrived in a render batch (Unix ms, this machine's clock).</summary>
    public IReadOnlyDictionary<string, long> Seen => _seen;

    /// <summary>The connection closed (without <see cref="DisposeAsync"/>).</summary>
    public bool Disconnected { get; private set; }

    /// <summary>The server reported a circuit error (<c>JS.Error</c>): the page would show its reconnect or error UI.</summary>
    public string? Error { get; private set; }

    /// <summary>
    /// Opens <paramref name="path"/> as a signed-in tab (<paramref name="http"/> carries the cookie) and waits until the
    /// page is interactive and its queue shows rows or says it is empty.
    /// </summary>
    public static async Task<BlazorCircuit> OpenAsync(HttpClient http, string cookie, string path, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookie);
        using var response = await http.SendAsync(request, cancel);
        response.EnsureSuccessStatusCode();
        var html = await response.Content.ReadAsStringAsync(cancel);
        var markers = Markers().Matches(html).Select(m => m.Groups[1].Value).Where(m => m.Contains("\"descriptor\"", StringComparison.Ordinal)).ToList();
        if (markers.Count == 0)
        {
            throw new InvalidOperationException($"{path} has no interactive server component (is the cookie signed in?).");
        }
        var state = State().Match(html) is { Success: true } s ? s.Groups[1].Value : "";

        var baseUri = http.BaseAddress!.ToString();
        var builder = new HubConnectionBuilder()
            .WithUrl(new Uri(http.BaseAddress, "_blazor"), HttpTransportType.WebSockets, o => o.Headers["Cookie"] = cookie)
            .WithServerTimeout(TimeSpan.FromMinutes(2));
        builder.Services.AddSingleton<IHubProtocol, BlazorPackProtocol>();
        var circuit = new BlazorCircuit(builder.Build(), http);
        circuit.Listen();
        await circuit._connection.StartAsync(cancel);
        circuit._circuitId = await circuit._connection.InvokeAsync<string?>("StartCircuit", baseUri, new Uri(http.BaseAddress, path).ToString(), "[]", state, cancel)
            ?? throw new InvalidOperationException("The server refused to start the circuit.");
        var operations = markers.Select((marker, i) => $$"""{"type":"add","ssrComponentId":{{i + 1}},"marker":{{marker}}}""");
        await circuit._connection.SendAsync("UpdateRootComponents", $$"""{"batchId":1,"operations":[{{string.Join(',', operations)}}]}""", state, cancel);
        await circuit._ready.Task.WaitAsync(TimeSpan.FromSeconds(30), cancel);
        return circuit;
    }

    private void Listen()
    {
        _connection.Closed += error =>
        {
            Disconnected = _circuitId is not null;
            _ready.TrySetException(error ?? new InvalidOperationException("The circuit's connection closed."));
            return Task.CompletedTask;
        };
        _connection.On<long, byte[]>("JS.RenderBatch", async (batchId, batch) =>
        {
            Note(batch);
            await _connection.SendAsync("OnRenderCompleted", batchId, null);
        });
        _connection.On("JS.BeginInvokeJS", [typeof(long), typeof(string), typeof(string), typeof(int), typeof(long), typeof(int)], async arguments =>
        {
            var (handle, identifier, json) = ((long)arguments[0]!, (string)arguments[1]!, (string)arguments[2]!);
            // A page's answer: nothing of value for the calls a queue makes (notifications stay off, the time zone is UTC).
            var result = identifier == "reviewerPortal.enableNotifications" ? "false" : "null";
            if (handle != 0)
            {
                await _connection.SendAsync("EndInvokeJSFromDotNet", handle, true, $"[{handle},true,{result}]");
            }
            if (identifier == "Blazor._internal.Virtualize.init")
            {
                // The browser's IntersectionObserver: the spacer after the items is visible in a viewport this tall.
                using var args = JsonDocument.Parse(json);
                var reference = args.RootElement[0].GetProperty("__dotNetObject").GetInt64();
                var call = Interlocked.Increment(ref _dotNetCalls).ToString(System.Globalization.CultureInfo.InvariantCulture);
                await _connection.SendAsync("BeginInvokeDotNetFromJS", call, null, "OnSpacerAfterVisible", reference, $"[0,0,{ViewportHeight}]");
            }
        });
        _connection.On<string>("JS.Error", error =>
        {
            Error ??= error;
            _ready.TrySetException(new InvalidOperationException("The circuit failed: " + error));
        });
        // Answers to the calls above, location and stream messages: a queue tab needs none of them.
        foreach (var ignored in new[] { "JS.EndInvokeDotNet", "JS.EndLocationChanging", "JS.ReceiveByteArray", "JS.BeginTransmitStream" })
        {
            _connection.On(ignored, [typeof(object)], _ => Task.CompletedTask);
        }
    }

    /// <summary>Notes the approval ids a batch carries (a batch's strings are UTF-8 in its string table) and readiness.</summary>
    private void Note(byte[] batch)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var text = Encoding.Latin1.GetString(batch);
        foreach (Match id in ApprovalId().Matches(text))
        {
            _seen.TryAdd(id.Value, now);
        }
        if (text.Contains("queue-row", StringComparison.Ordinal) || text.Contains("queue-empty", StringComparison.Ordinal))
        {
            _ready.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        var circuitId = _circuitId;
        _circuitId = null;
        await _connection.DisposeAsync();
        if (circuitId is not null)
        {
            // As the page's unload beacon: the server frees the circuit now instead of keeping it for a reconnect.
            using var content = new FormUrlEncodedContent([new("circuitId", circuitId)]);
            try
            {
                await _http.PostAsync("_blazor/disconnect", content);
            }
            catch (HttpRequestException)
            {
            }
        }
    }

    /// <summary>Signs in through the login form (anti-forgery token and all) and returns the auth cookie as a header value.</summary>
    public static async Task<string> SignInAsync(Uri baseUrl, string userName, string password)
    {
        var jar = new CookieContainer();
        using var browser = new HttpClient(new HttpClientHandler { CookieContainer = jar, AllowAutoRedirect = false }) { BaseAddress = baseUrl };
        var form = await browser.GetStringAsync("/account/login");
        var token = Antiforgery().Match(form).Groups[1].Value;
        using var signIn = await browser.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = token,
            ["Input.UserName"] = userName,
            ["Input.Password"] = password,
        }));
        var auth = jar.GetCookies(baseUrl)["rp.auth"];
        if (signIn.StatusCode != HttpStatusCode.Redirect || auth is null)
        {
            throw new InvalidOperationException($"Signing in as {userName} failed: {(int)signIn.StatusCode}.");
        }
        return $"rp.auth={auth.Value}";
    }

    [GeneratedRegex("<!--Blazor:(\\{.*?\\})-->", RegexOptions.Singleline)]
    private static partial Regex Markers();

    [GeneratedRegex("<!--Blazor-Server-Component-State:(.*?)-->", RegexOptions.Singleline)]
    private static partial Regex State();

    [GeneratedRegex("apr_[0-9A-Z]{26}")]
    private static partial Regex ApprovalId();

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();

    /// <summary>Blazor Server's hub protocol: SignalR's MessagePack protocol under the name the <c>_blazor</c> hub knows.</summary>
    private sealed class BlazorPackProtocol : IHubProtocol
    {
        private readonly MessagePackHubProtocol _inner = new();

        public string Name => "blazorpack";

        public int Version => _inner.Version;

        public TransferFormat TransferFormat => TransferFormat.Binary;

        public bool IsVersionSupported(int version) => _inner.IsVersionSupported(version);

        public bool TryParseMessage(ref ReadOnlySequence<byte> input, IInvocationBinder binder, [NotNullWhen(true)] out HubMessage? message) =>
            _inner.TryParseMessage(ref input, binder, out message);

        public void WriteMessage(HubMessage message, IBufferWriter<byte> output) => _inner.WriteMessage(message, output);

        public ReadOnlyMemory<byte> GetMessageBytes(HubMessage message) => _inner.GetMessageBytes(message);
    }
}
