using System.Net;
using System.Text;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>
/// A local webhook endpoint inside the test run: answers 503 to the first requests ("offline"), then 200; or, with
/// <c>respond</c>, the status code that gives for each request (its index from 0), whenever it gives it.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private readonly Func<Received, int, Task<int>>? _respond;
    private int _refuse;

    private string? _redirectTo;

    private WebhookReceiver(int failFirst, Func<Received, int, Task<int>>? respond)
    {
        _refuse = failFirst;
        _respond = respond;
        var port = FreePort.Pick();
        Url = $"http://127.0.0.1:{port}/hook/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }
    public List<Received> Requests { get; } = [];

    public static WebhookReceiver Start(int failFirst = 0, Func<Received, int, Task<int>>? respond = null) => new(failFirst, respond);

    /// <summary>A receiver that answers every request with <c>307</c> to <paramref name="location"/> (an open redirect, say).</summary>
    public static WebhookReceiver Redirecting(string location) => new(0, (_, _) => Task.FromResult(307)) { _redirectTo = location };

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                return;
            }
            string body;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }
            var received = new Received(body, context.Request.Headers["Idempotency-Key"], context.Request.Headers["X-Signature"],
                context.Request.Headers["X-Delivery-Attempt"], context.Request.Headers["traceparent"]);
            int index;
            lock (Requests)
            {
                Requests.Add(received);
                index = Requests.Count - 1;
            }
            var status = _respond is null ? Interlocked.Decrement(ref _refuse) >= 0 ? 503 : 200 : await _respond(received, index);
            try
            {
                context.Response.StatusCode = status;
                if (_redirectTo is not null)
                {
                    context.Response.RedirectLocation = _redirectTo;
                }
                context.Response.Close();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or IOException)
            {
                // The caller gave up waiting (its timeout): the answer arrives nowhere.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Close alone (it stops too): Stop then Close unregisters the prefix twice, and on Linux the second time binds
        // the port again to find its listener, which fails with "Address already in use" once another test took it.
        _listener.Close();
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(5)); // a respond callback that never answers must not hang the test run
        }
        catch (TimeoutException)
        {
        }
    }

    public sealed record Received(string Body, string? IdempotencyKey, string? Signature, string? Attempt = null, string? TraceParent = null);
}
