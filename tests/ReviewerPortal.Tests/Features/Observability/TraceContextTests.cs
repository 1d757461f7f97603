using System.Collections;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Instrumentation.StackExchangeRedis;
using OpenTelemetry.Trace;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Notifications;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Features.Approvals;
using ReviewerPortal.Tests.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Observability;

/// <summary>
/// The agent's trace crosses the human wait: the <c>traceparent</c> sent with the submit is kept with the approval, and
/// the decision, the dispatch (the webhook's <c>traceparent</c>, the Redis sink message's field) and the notifications
/// continue it. Spans are read with OpenTelemetry's in-memory exporter.
/// </summary>
public sealed class TraceContextTests
{
    private static (string TraceId, string TraceParent) NewAgentTrace()
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        return (traceId, $"00-{traceId}-{ActivitySpanId.CreateRandom().ToHexString()}-01");
    }

    private static Task<TestApp> StartAsync(Spans spans) => TestApp.StartAsync(
        settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false", ["Notifications:Enabled"] = "false" },
        services: s => s.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(spans)));

    private static async Task<string> SubmitTracedAsync(TestApp app, string traceParent)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/jobs")
        {
            Content = JsonContent.Create(new { topic = "finance.payment.execute", env = "production", payload = new { invoice = "INV-7", amount = 7 } }),
        };
        request.Headers.Add("traceparent", traceParent);
        var response = await app.Agent("acme").SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        return (await response.Json()).Str("approvalId");
    }

    [Fact]
    public async Task One_trace_runs_from_the_agents_submit_through_the_wait_and_the_decision_to_the_webhook_worker()
    {
        var spans = new Spans();
        await using var receiver = WebhookReceiver.Start();
        await using var app = await StartAsync(spans);
        var put = await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { dispatch = new { kind = "webhook", url = receiver.Url, secret = "0123456789abcdef-secret" } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var (traceId, traceParent) = NewAgentTrace();

        var id = await SubmitTracedAsync(app, traceParent);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode); // the reviewer's own request: another trace
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);

        var delivered = Assert.Single(receiver.Requests);
        Assert.NotNull(delivered.TraceParent);
        Assert.Equal(traceId, delivered.TraceParent!.Split('-')[1]);
        Assert.Equal(traceId, JsonDocument.Parse(delivered.Body).RootElement.Str("traceparent").Split('-')[1]);
        var names = spans.Of(traceId).Select(a => a.DisplayName).ToList();
        Assert.Contains("policy evaluate", names);
        Assert.Contains("approval wait", names);
        Assert.Contains("approval approve", names);
        Assert.Contains("dispatch publish", names);
        Assert.Contains(spans.Of(traceId), a => a.Kind == ActivityKind.Client && a.Source.Name.Contains("Http", StringComparison.Ordinal));
        // The decision links back to the reviewer's request, whose trace is not the agent's.
        var approve = spans.Of(traceId).Single(a => a.DisplayName == "approval approve");
        Assert.Contains(approve.Links, l => l.Context.TraceId.ToHexString() != traceId);
    }

    [Fact]
    public async Task Redis_commands_are_traced_only_when_traces_are_exported()
    {
        // Without an exporter nobody sees a Redis span: the client's profiler stays off (it costs every command).
        await using (var quiet = await TestApp.StartAsync())
        {
            Assert.Null(quiet.Services.GetService<StackExchangeRedisInstrumentation>());
        }
        await using var exported = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9",
        });
        Assert.NotNull(exported.Services.GetService<StackExchangeRedisInstrumentation>());
    }

    [Fact]
    public async Task The_redis_sink_message_and_the_notifications_carry_the_agents_trace()
    {
        var spans = new Spans();
        await using var hook = WebhookReceiver.Start();
        await using var app = await StartAsync(spans);
        await Workflow.SetAsync(app, new
        {
            dispatch = new { kind = "redis", key = "workers" },
            notifications = new { webhookUrl = hook.Url, webhookSecret = "0123456789abcdef-secret" },
        });
        var (traceId, traceParent) = NewAgentTrace();

        var id = await SubmitTracedAsync(app, traceParent);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);
        await app.Services.GetRequiredService<Notifier>().RunDueAsync(CancellationToken.None);

        var sink = await app.Services.GetRequiredService<RedisConnection>().Database.ListRangeAsync(RedisKeys.Sink("acme", "workers"));
        var message = JsonDocument.Parse((string)Assert.Single(sink)!).RootElement;
        Assert.Equal(traceId, message.Str("traceparent").Split('-')[1]);
        Assert.NotEmpty(hook.Requests); // approval requested, then decided
        Assert.All(hook.Requests, r => Assert.Equal(traceId, r.TraceParent?.Split('-')[1]));
        Assert.Contains(spans.Of(traceId), a => a.DisplayName.StartsWith("notify ", StringComparison.Ordinal));
    }

    /// <summary>The exporter's list, safe for the other apps in this process that end activities on other threads.</summary>
    private sealed class Spans : ICollection<Activity>
    {
        private readonly List<Activity> _items = [];

        public IReadOnlyList<Activity> Of(string traceId)
        {
            lock (_items)
            {
                return [.. _items.Where(a => a.TraceId.ToHexString() == traceId)];
            }
        }

        public void Add(Activity item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(Activity item)
        {
            lock (_items)
            {
                return _items.Contains(item);
            }
        }

        public void CopyTo(Activity[] array, int arrayIndex)
        {
            lock (_items)
            {
                _items.CopyTo(array, arrayIndex);
            }
        }

        public bool Remove(Activity item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public IEnumerator<Activity> GetEnumerator()
        {
            lock (_items)
            {
                return _items.ToList().GetEnumerator();
            }
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
