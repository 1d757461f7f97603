using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>Two app instances on one Redis (and one SQLite file), as a scaled-out deployment runs.</summary>
public sealed class TwoInstancesTests : IAsyncLifetime
{
    private TestApp? _a;
    private TestApp? _b;

    public async Task InitializeAsync()
    {
        var data = TestServers.NewTempDirectory("two");
        var prefix = $"two{Guid.NewGuid():N}:";
        _a = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix);
        _b = await TestApp.StartAsync(dataPath: data, keyPrefix: prefix);
    }

    public async Task DisposeAsync()
    {
        foreach (var app in new[] { _b, _a })
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_decision_on_one_instance_reaches_the_other_instances_pages_and_long_polls()
    {
        var (a, b) = (_a!, _b!);
        var seenOnA = new TaskCompletionSource<ApprovalChange>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = a.Services.GetRequiredService<ChangeFeed>().Subscribe(change =>
        {
            if (change.State == ApprovalStates.Approved)
            {
                seenOnA.TrySetResult(change);
            }
        });

        var id = (await a.Agent("acme").SubmitPayment()).Str("approvalId");
        var waitingOnA = a.Agent("acme").GetAsync($"/api/v1/approvals/{id}/decision?waitSeconds=30");
        var approved = await b.Account("alice").Approve(id);

        Assert.True(approved.IsSuccessStatusCode);
        var change = await seenOnA.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(id, change.ApprovalId);
        Assert.Equal("approved", (await (await waitingOnA).Json()).Str("state"));
        // And the other instance answers idempotently from the same state.
        Assert.Equal("already_approved", (await (await a.Account("bob").Approve(id)).Json()).Str("result"));
    }

    [Fact]
    public async Task Settings_changed_on_one_instance_bind_the_next_decision_on_the_other_whose_cache_holds_the_old_ones()
    {
        var (a, b) = (_a!, _b!);
        // A reads (and caches) acme's settings: alice may approve there.
        var first = (await a.Agent("acme").SubmitPayment(1)).Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await a.Account("alice").Approve(first)).StatusCode);

        // B takes alice off the approvers; A's next decision must see it though nothing told A.
        var put = await b.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new { approvers = new[] { "bob" } });
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var second = (await a.Agent("acme").SubmitPayment(2)).Str("approvalId");
        var refused = await a.Account("alice").Approve(second);

        // alice is no longer a reviewer of acme at all: its approvals are not hers to see (a stale copy would answer 200).
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await a.Account("bob").Approve(second)).StatusCode);
    }
}
