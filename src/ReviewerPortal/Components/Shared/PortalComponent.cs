using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using ReviewerPortal.Features.Approvals;
using MudBlazor;
using ReviewerPortal.Features.Auth;

namespace ReviewerPortal.Components.Shared;

/// <summary>
/// Base of the portal's pages: who is signed in, and live updates from the change feed (eShop's pattern: subscribe
/// after the first render, call back through InvokeAsync, report failures with DispatchExceptionAsync).
/// </summary>
public abstract class PortalComponent : ComponentBase, IDisposable
{
    private IDisposable? _subscription;
    private LiveThrottle? _live;

    [CascadingParameter]
    private Task<AuthenticationState> AuthenticationState { get; set; } = default!;

    /// <summary>Set while the page is prerendered for an HTTP request; null over the circuit.</summary>
    [CascadingParameter]
    private HttpContext? HttpContext { get; set; }

    [Inject]
    protected ChangeFeed Feed { get; set; } = default!;

    [Inject]
    protected TimeProvider Time { get; set; } = default!;

    /// <summary>
    /// Prerendered over HTTP, the answer is a 404 (the status page, re-executed, shows the same not-found words as the
    /// page does over the circuit); over the circuit, nothing to do.
    /// </summary>
    protected void AnswerNotFound()
    {
        if (HttpContext is { Response.HasStarted: false } http)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
        }
    }

    protected async Task<Caller> CallerAsync() => Caller.From((await AuthenticationState).User);

    /// <summary>Which changes this page reacts to; null: none.</summary>
    protected virtual bool IsRelevant(ApprovalChange change) => false;

    /// <summary>Reloads what changed; called at most every <see cref="Debounce"/>, and within one of it after a change
    /// however steadily changes arrive (see <see cref="LiveThrottle"/>).</summary>
    protected virtual Task OnLiveChangeAsync() => Task.CompletedTask;

    protected virtual TimeSpan Debounce => TimeSpan.FromMilliseconds(150);

    protected override void OnAfterRender(bool firstRender)
    {
        if (firstRender)
        {
            _live = new LiveThrottle(Debounce, () => InvokeAsync(async () =>
            {
                await OnLiveChangeAsync();
                StateHasChanged();
            }), DispatchExceptionAsync);
            _subscription = Feed.Subscribe(change =>
            {
                if (IsRelevant(change))
                {
                    _live.Signal();
                }
            });
        }
    }

    public virtual void Dispose()
    {
        _subscription?.Dispose();
        _live?.Dispose();
        GC.SuppressFinalize(this);
    }
}

public static class Display
{
    /// <summary>
    /// Text as a reviewer must see it: bidirectional controls and invisible characters (which can make
    /// <c>invoice\u202Efdp.exe</c> read as <c>invoiceexe.pdf</c>) are shown as <c>[U+202E]</c>. Markup is encoded by Razor.
    /// </summary>
    public static string Visible(string? text)
    {
        if (string.IsNullOrEmpty(text) || !text.Any(IsHidden))
        {
            return text ?? "";
        }
        var shown = new System.Text.StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (IsHidden(c))
            {
                shown.Append("[U+").Append(((int)c).ToString("X4", System.Globalization.CultureInfo.InvariantCulture)).Append(']');
            }
            else
            {
                shown.Append(c);
            }
        }
        return shown.ToString();
    }

    private static bool IsHidden(char c) =>
        c is '\u061C' or (>= '\u200B' and <= '\u200F') or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069') or '\uFEFF';

    /// <summary>A duration as the portal writes every duration ("23 h 59 min"); points in time use the When component.</summary>
    public static string Age(TimeSpan age) => ReviewerPortal.Features.Reading.TimeText.Duration(age);

    /// <summary>CSS class for time left: amber under a fifth of the TTL or an hour, red under 5% or ten minutes.</summary>
    public static string Urgency(Approval approval, DateTimeOffset now)
    {
        var left = approval.ExpiresAt - now;
        var ttl = approval.ExpiresAt - approval.CreatedAt;
        if (left <= TimeSpan.FromMinutes(10) || left <= ttl * 0.05)
        {
            return "rp-red";
        }
        return left <= TimeSpan.FromHours(1) || left <= ttl * 0.2 ? "rp-amber" : "";
    }

    public static string Summary(System.Text.Json.JsonElement payload, int max = 90)
    {
        if (payload.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            return "";
        }
        var text = Visible(string.Join(", ", payload.EnumerateObject().Select(p => $"{p.Name}: {Scalar(p.Value)}")));
        return text.Length <= max ? text : text[..(max - 1)] + "…";
    }

    /// <summary>
    /// The first <paramref name="max"/> top-level payload fields as name and value text (values cut at
    /// <paramref name="maxValue"/> characters), for a queue card on a phone; nothing for a payload that is not an object.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> KeyFields(System.Text.Json.JsonElement payload, int max = 4, int maxValue = 40)
    {
        if (payload.ValueKind != System.Text.Json.JsonValueKind.Object)
        {
            return [];
        }
        return [.. payload.EnumerateObject().Take(max).Select(p =>
        {
            var value = Visible(Scalar(p.Value));
            return KeyValuePair.Create(Visible(p.Name), value.Length <= maxValue ? value : value[..(maxValue - 1)] + "…");
        })];
    }

    /// <summary>What a screen reader hears when the pending count moves: "2 new requests, 5 pending"; null when it did not move.</summary>
    public static string? QueueChange(long before, long after)
    {
        var delta = after - before;
        return delta switch
        {
            > 0 => $"{delta} new request{(delta == 1 ? "" : "s")}, {after} pending",
            < 0 => $"{-delta} request{(delta == -1 ? "" : "s")} left the queue, {after} pending",
            _ => null,
        };
    }

    private static string Scalar(System.Text.Json.JsonElement value) => value.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => value.GetString() ?? "",
        System.Text.Json.JsonValueKind.Object => "{…}",
        System.Text.Json.JsonValueKind.Array => $"[{value.GetArrayLength()}]",
        _ => value.GetRawText(),
    };

    public static Color PriorityColor(string priority) => priority switch
    {
        "critical" => Color.Error,
        "high" => Color.Warning,
        "low" => Color.Default,
        _ => Color.Info,
    };
}
