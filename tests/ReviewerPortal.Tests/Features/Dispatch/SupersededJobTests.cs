using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Dispatch;

/// <summary>A job id of a version that was sent back and replaced speaks for that version only: <c>superseded</c>.</summary>
public sealed class SupersededJobTests
{
    [Fact]
    public async Task The_first_versions_job_id_answers_superseded_and_cannot_complete_the_second()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Dispatch:Enabled"] = "false" });
        Assert.Equal(HttpStatusCode.OK, (await app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings",
            new { dispatch = new { kind = "redis", key = "workers" } })).StatusCode);
        var agent = app.Agent("acme");
        var submitted = await agent.SubmitPayment(100);
        var (id, v1Job) = (submitted.Str("approvalId"), submitted.Str("jobId"));
        Assert.Equal(HttpStatusCode.OK,
            (await app.Account("bob").PostAsJsonAsync($"/api/v1/approvals/{id}/request-changes", new { reason = "PO" })).StatusCode);
        var v2 = await (await agent.PostAsJsonAsync($"/api/v1/approvals/{id}/resubmit",
            new { payload = new { invoice = "INV-100", amount = 100, po = "PO-1" } })).Json();
        var v2Job = v2.GetProperty("approval").Str("jobId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        await app.Services.GetRequiredService<Dispatcher>().RunDueAsync(CancellationToken.None);

        var old = await (await agent.GetAsync($"/api/v1/jobs/{v1Job}")).Json();
        Assert.Equal("superseded", old.Str("state"));
        Assert.False(old.GetProperty("approvalGranted").GetBoolean());
        var current = await (await agent.GetAsync($"/api/v1/jobs/{v2Job}")).Json();
        Assert.Equal("approved", current.Str("state"));
        Assert.Equal("dispatched", current.Str("dispatch"));

        var result = await agent.PostAsJsonAsync($"/api/v1/jobs/{v1Job}/result", new { status = "completed" });
        Assert.Equal(HttpStatusCode.Conflict, result.StatusCode);
        Assert.Equal("superseded", (await result.Json()).Str("code"));
        Assert.Equal("dispatched", (await (await agent.GetAsync($"/api/v1/jobs/{v2Job}")).Json()).Str("dispatch"));
        Assert.Equal(0, await app.AuditCountAsync(id, "job_completed"));
    }
}
