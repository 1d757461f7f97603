using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace ReviewerPortal.Client;

/// <summary>
/// A client for ReviewerPortal's API. Agents submit and wait; reviewers decide. <see cref="WaitForDecisionAsync"/>
/// listens on the SignalR hub once <see cref="ConnectAsync"/> succeeded and falls back to the long-poll endpoint
/// otherwise (or when the hub connection drops), so a decision is never missed.
/// </summary>
public sealed class ReviewerPortalClient : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly HttpClient _http;
    private readonly string _token;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<ApprovalChanged>> _waiters = new();
    private HubConnection? _hub;
    private TaskCompletionSource _down = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="baseAddress">The portal's address, e.g. <c>https://approvals.example.com</c>.</param>
    /// <param name="token">An agent key or a person's API token.</param>
    /// <param name="http">Optional HttpClient (its BaseAddress is set to <paramref name="baseAddress"/>).</param>
    public ReviewerPortalClient(Uri baseAddress, string token, HttpClient? http = null)
    {
        _token = token;
        _http = http ?? new HttpClient();
        _http.BaseAddress = baseAddress;
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    /// <summary>True while the hub connection is up.</summary>
    public bool HubConnected => _hub?.State == HubConnectionState.Connected;

    /// <summary>Connects the SignalR hub (optional: without it waits use the long-poll endpoint).</summary>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        _hub = new HubConnectionBuilder()
            .WithUrl(new Uri(_http.BaseAddress!, "hubs/approvals"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(_token))
            .WithAutomaticReconnect()
            .Build();
        _hub.On<ApprovalChanged>("approvalChanged", change =>
        {
            if (change.State != "pending" && _waiters.TryGetValue(change.ApprovalId, out var waiter))
            {
                waiter.TrySetResult(change);
            }
        });
        // A drop while waiting hands the wait over to the long-poll, so a decision made meanwhile is not missed.
        _hub.Reconnecting += _ => { _down.TrySetResult(); return Task.CompletedTask; };
        _hub.Closed += _ => { _down.TrySetResult(); return Task.CompletedTask; };
        _hub.Reconnected += _ => { _down = new(TaskCreationOptions.RunContinuationsAsynchronously); return Task.CompletedTask; };
        await _hub.StartAsync(cancellationToken);
    }

    /// <summary>Submits a job; the policy's answer, including deny (403) and throttle (429), comes back as a result.</summary>
    public async Task<SubmitResult> SubmitAsync(JobSubmission job, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("api/v1/jobs", job, Json, cancellationToken);
        if (response.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.TooManyRequests)
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken);
            return new SubmitResult
            {
                Decision = response.StatusCode == HttpStatusCode.Forbidden ? "deny" : "throttle",
                RuleId = problem.TryGetProperty("ruleId", out var rule) ? rule.GetString() : null,
                Detail = problem.TryGetProperty("detail", out var detail) ? detail.GetString() : null,
                RetryAfter = response.Headers.RetryAfter?.Delta,
            };
        }
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<SubmitResult>(Json, cancellationToken))!;
    }

    /// <summary>The approval, or null when it does not exist for this caller.</summary>
    public async Task<ApprovalInfo?> GetAsync(string approvalId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}", cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadFromJsonAsync<ApprovalInfo>(Json, cancellationToken);
    }

    /// <summary>
    /// Waits until the approval leaves <c>pending</c> (decided, expired, withdrawn, or changes requested: check
    /// <see cref="ApprovalInfo.IsChangesRequested"/>) or <paramref name="timeout"/> passes,
    /// and returns it as it then is. Uses the hub when connected, else long-polls in steps of at most 60 s.
    /// </summary>
    public async Task<ApprovalInfo?> WaitForDecisionAsync(string approvalId, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        if (HubConnected)
        {
            var waiter = _waiters.GetOrAdd(approvalId, _ => new TaskCompletionSource<ApprovalChanged>(TaskCreationOptions.RunContinuationsAsynchronously));
            try
            {
                var current = await GetAsync(approvalId, cancellationToken); // registered first: no change is missed
                if (current is null || !current.IsPending)
                {
                    return current;
                }
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var finished = await Task.WhenAny(waiter.Task, Task.Delay(timeout, linked.Token), _down.Task);
                await linked.CancelAsync();
                if (finished == waiter.Task || DateTimeOffset.UtcNow >= deadline)
                {
                    return await GetAsync(approvalId, cancellationToken);
                }
            }
            finally
            {
                _waiters.TryRemove(approvalId, out _);
            }
        }
        // Long-poll (no hub, or the hub dropped while waiting).
        while (true)
        {
            var left = deadline - DateTimeOffset.UtcNow;
            var seconds = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 0, 60);
            using var response = await _http.GetAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/decision?waitSeconds={seconds}", cancellationToken);
            if (response.StatusCode == HttpStatusCode.NotFound)
            {
                return null;
            }
            await EnsureSuccessAsync(response, cancellationToken);
            var approval = (await response.Content.ReadFromJsonAsync<ApprovalInfo>(Json, cancellationToken))!;
            if (!approval.IsPending || seconds == 0 || DateTimeOffset.UtcNow >= deadline)
            {
                return approval;
            }
        }
    }

    /// <summary>
    /// Records a side effect's result once per (approval, action): the first call stores <paramref name="result"/>,
    /// every later call returns that first result, so a retried executor never runs an action twice.
    /// The job hash and snapshot, when given, must match the approved job (409 otherwise).
    /// </summary>
    public async Task<SideEffectResult> RecordSideEffectAsync(string approvalId, string actionId, object result,
        string? jobHash = null, string? policySnapshot = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("api/v1/side-effects",
            new { approvalId, actionId, result, jobHash, policySnapshot }, Json, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<SideEffectResult>(Json, cancellationToken))!;
    }

    /// <summary>The signed receipt of a decided approval.</summary>
    public async Task<ApprovalReceipt> GetReceiptAsync(string approvalId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/receipt", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<ApprovalReceipt>(Json, cancellationToken))!;
    }

    /// <summary>A tenant's receipt-signing public keys (needs no credentials).</summary>
    public async Task<IReadOnlyList<PublicSigningKey>> GetPublicKeysAsync(string tenant, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/tenants/{Uri.EscapeDataString(tenant)}/keys", cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken);
        return body.GetProperty("keys").Deserialize<List<PublicSigningKey>>(Json)!;
    }

    /// <summary>Approves (reviewers). Idempotent: a second call answers <c>already_approved</c>.</summary>
    public Task<DecisionResult> ApproveAsync(string approvalId, string? reason = null, string? jobHash = null, string? policySnapshot = null,
        CancellationToken cancellationToken = default) => DecideAsync(approvalId, "approve", reason, jobHash, policySnapshot, cancellationToken);

    /// <summary>Rejects (reviewers). Idempotent: a second call answers <c>already_rejected</c>.</summary>
    public Task<DecisionResult> RejectAsync(string approvalId, string? reason = null, string? jobHash = null, string? policySnapshot = null,
        CancellationToken cancellationToken = default) => DecideAsync(approvalId, "reject", reason, jobHash, policySnapshot, cancellationToken);

    /// <summary>Sends the job back to its submitter with what to change (reviewers).</summary>
    public async Task<DecisionResult> RequestChangesAsync(string approvalId, string reason, CancellationToken cancellationToken = default) =>
        await PostAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/request-changes", new { reason }, cancellationToken);

    /// <summary>
    /// The submitting agent's amended payload after changes were requested: a new version with a new job hash. With the
    /// same <paramref name="idempotencyKey"/> a retry answers <c>already_resubmitted</c>.
    /// </summary>
    public async Task<DecisionResult> ResubmitAsync(string approvalId, object payload, string? idempotencyKey = null, CancellationToken cancellationToken = default) =>
        await PostAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/resubmit", new { payload, idempotencyKey }, cancellationToken);

    /// <summary>The submitting agent withdraws its request (pending or waiting for a resubmission). Final.</summary>
    public async Task<DecisionResult> WithdrawAsync(string approvalId, string? reason = null, CancellationToken cancellationToken = default) =>
        await PostAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/withdraw", new { reason }, cancellationToken);

    /// <summary>Opens a compliance case asking for <paramref name="documents"/> (agents). Defaults: 5 iterations, 60 days, 14 days a request.</summary>
    public async Task<CaseInfo> OpenCaseAsync(string subject, IReadOnlyList<string> documents, int? maxIterations = null, TimeSpan? window = null,
        TimeSpan? documentDeadline = null, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync("api/v1/cases", new
        {
            subject,
            documents,
            maxIterations,
            window = window is { } w ? System.Xml.XmlConvert.ToString(w) : null,
            documentDeadline = documentDeadline is { } d ? System.Xml.XmlConvert.ToString(d) : null,
            idempotencyKey,
        }, Json, cancellationToken);
        return await CaseOfAsync(response, cancellationToken);
    }

    /// <summary>Hands in the documents the case asks for (agents); the case goes to review.</summary>
    public async Task<CaseInfo> SubmitDocumentsAsync(string caseId, object documents, string? note = null, CancellationToken cancellationToken = default)
    {
        using var response = await _http.PostAsJsonAsync($"api/v1/cases/{Uri.EscapeDataString(caseId)}/documents", new { documents, note }, Json, cancellationToken);
        return await CaseOfAsync(response, cancellationToken);
    }

    /// <summary>The case, or null when it does not exist for this caller.</summary>
    public async Task<CaseInfo?> GetCaseAsync(string caseId, CancellationToken cancellationToken = default)
    {
        using var response = await _http.GetAsync($"api/v1/cases/{Uri.EscapeDataString(caseId)}", cancellationToken);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadFromJsonAsync<CaseInfo>(Json, cancellationToken);
    }

    private static async Task<CaseInfo> CaseOfAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        await EnsureSuccessAsync(response, cancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken);
        return body.GetProperty("case").Deserialize<CaseInfo>(Json)!;
    }

    private async Task<DecisionResult> PostAsync(string path, object body, CancellationToken cancellationToken)
    {
        using var response = await _http.PostAsJsonAsync(path, body, Json, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return (await response.Content.ReadFromJsonAsync<DecisionResult>(Json, cancellationToken))!;
    }

    private async Task<DecisionResult> DecideAsync(string approvalId, string verb, string? reason, string? jobHash, string? policySnapshot,
        CancellationToken cancellationToken)
    {
        return await PostAsync($"api/v1/approvals/{Uri.EscapeDataString(approvalId)}/{verb}", new { reason, jobHash, policySnapshot }, cancellationToken);
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        string? code = null;
        var message = $"{(int)response.StatusCode} {response.ReasonPhrase}";
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken);
            code = problem.TryGetProperty("code", out var c) ? c.GetString() : null;
            message = problem.TryGetProperty("detail", out var d) && d.GetString() is { } detail ? detail : message;
        }
        catch (JsonException)
        {
        }
        throw new ReviewerPortalException((int)response.StatusCode, code, message);
    }

    public async ValueTask DisposeAsync()
    {
        if (_hub is not null)
        {
            await _hub.DisposeAsync();
        }
        _http.Dispose();
    }
}
