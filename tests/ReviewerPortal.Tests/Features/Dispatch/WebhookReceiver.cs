using System.Net;
using System.Text;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>A local webhook endpoint inside the test run: answers 503 to the first requests ("offline"), then 200.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private int _refuse;

    private WebhookReceiver(int failFirst)
    {
        _refuse = failFirst;
        var port = FreePort.Pick();
        Url = $"http://127.0.0.1:{port}/hook/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string Url { get; }
    public List<Received> Requests { get; } = [];

    public static WebhookReceiver Start(int failFirst = 0) => new(failFirst);

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
            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            lock (Requests)
            {
                Requests.Add(new Received(body, context.Request.Headers["Idempotency-Key"], context.Request.Headers["X-Signature"]));
            }
            context.Response.StatusCode = Interlocked.Decrement(ref _refuse) >= 0 ? 503 : 200;
            context.Response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop;
    }

    public sealed record Received(string Body, string? IdempotencyKey, string? Signature);
}
