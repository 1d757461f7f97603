using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Load;

/// <summary>
/// A webhook consumer on 127.0.0.1 for the faults scenario: records every delivery (its <c>Idempotency-Key</c>, the
/// body's <c>replay</c> and <c>attempt</c>, the answer), and misbehaves now and then: every 20th request is refused
/// (503), every 50th is answered 200 only after <see cref="LateBy"/>, past the app's webhook timeout (the job ran,
/// the app does not know it), so the app must send those again as replays.
/// </summary>
public sealed class WebhookSink : IAsyncDisposable
{
    public static readonly TimeSpan LateBy = TimeSpan.FromSeconds(1.5);

    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly ConcurrentDictionary<Task, byte> _handling = new();
    private int _count;

    private WebhookSink()
    {
        Url = $"http://127.0.0.1:{FreePort.Pick()}/hook/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }
    public ConcurrentQueue<Delivery> Deliveries { get; } = new();

    public static WebhookSink Start() => new();

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            var handling = HandleAsync(context);
            _handling[handling] = 0;
            _ = handling.ContinueWith(t => _handling.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        try
        {
            string body;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }
            var n = Interlocked.Increment(ref _count);
            var status = n % 20 == 0 ? 503 : 200;
            bool replay = false;
            int attempt = 0;
            try
            {
                using var json = JsonDocument.Parse(body);
                replay = json.RootElement.TryGetProperty("replay", out var r) && r.GetBoolean();
                attempt = json.RootElement.TryGetProperty("attempt", out var a) ? a.GetInt32() : 0;
            }
            catch (JsonException)
            {
            }
            Deliveries.Enqueue(new Delivery(context.Request.Headers["Idempotency-Key"] ?? "", replay, attempt, status, DateTimeOffset.UtcNow));
            if (n % 50 == 0)
            {
                await Task.Delay(LateBy); // answered after the app stopped waiting
            }
            context.Response.StatusCode = status;
            context.Response.Close();
        }
        catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or IOException)
        {
            // The app gave up on this request (its timeout) or went away (killed).
        }
    }

    /// <summary>What a consumer deduplicating on the key sees.</summary>
    public (int Jobs, int Deliveries, int Replays, int UnmarkedDuplicates) Tally()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int deliveries = 0, replays = 0, unmarked = 0;
        foreach (var d in Deliveries.OrderBy(d => d.At))
        {
            deliveries++;
            replays += d.Replay ? 1 : 0;
            if (!seen.Add(d.Key) && !d.Replay)
            {
                unmarked++; // a second delivery of a job that looks like a first one
            }
        }
        return (seen.Count, deliveries, replays, unmarked);
    }

    /// <summary>Job ids the consumer accepted (answered 2xx, possibly late).</summary>
    public HashSet<string> Accepted() => [.. Deliveries.Where(d => d.Status is >= 200 and < 300).Select(d => d.Key)];

    public async ValueTask DisposeAsync()
    {
        _listener.Close(); // stops too; Stop then Close unregisters the prefix twice (see WebhookReceiver)
        await _loop;
        await Task.WhenAll(_handling.Keys);
    }

    public sealed record Delivery(string Key, bool Replay, int Attempt, int Status, DateTimeOffset At);
}
