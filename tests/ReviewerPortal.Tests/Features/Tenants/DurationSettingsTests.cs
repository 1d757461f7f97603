using System.Net;
using System.Net.Http.Json;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Tenants;

/// <summary>
/// Every duration of the tenant settings takes the same forms (security issue: <c>approvalTtl: "72:00:00"</c> was
/// refused with "from 1 minute to 30 days" while <c>72h</c> passed); an error names the forms and the true range.
/// </summary>
public sealed class DurationSettingsTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync();

    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Theory]
    [InlineData("72:00:00")]
    [InlineData("3.00:00:00")]
    [InlineData("72h")]
    [InlineData("3d")]
    [InlineData("4320m")]
    [InlineData("259200s")]
    [InlineData("PT72H")]
    [InlineData("P3D")]
    [InlineData("P2DT24H")]
    public async Task Approval_ttl_and_the_workflow_durations_take_every_format(string threeDays)
    {
        var ada = _app.Account("ada");
        var put = await ada.PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            approvalTtl = threeDays,
            sla = threeDays,
            reminderInterval = threeDays,
            escalation = new[] { new { approvers = new[] { "bob" }, sla = threeDays } },
            resubmissionWindow = threeDays,
        });

        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var settings = await (await ada.GetAsync("/api/v1/tenants/acme/settings")).Json();
        Assert.Equal(3 * 86400, settings.GetProperty("approvalTtlSeconds").GetInt64());
        Assert.Equal("3d", settings.Str("approvalTtl"));
        Assert.Equal("3d", settings.Str("sla"));
        Assert.Equal("3d", settings.Str("reminderInterval"));
        Assert.Equal("3d", settings.GetProperty("escalation")[0].Str("sla"));
        Assert.Equal("3d", settings.Str("resubmissionWindow"));
    }

    [Fact]
    public async Task An_error_names_the_field_the_forms_and_the_range_that_applies_to_it()
    {
        var put = await _app.Account("ada").PutAsJsonAsync("/api/v1/tenants/acme/settings", new
        {
            approvalTtl = "31.00:00:00",
            sla = "soon",
            escalation = new[] { new { approvers = new[] { "bob" }, sla = "5s" } },
            resubmissionWindow = "P1M",
        });

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        var errors = (await put.Json()).GetProperty("errors");
        var ttl = errors.GetProperty("approvalTtl")[0].GetString()!;
        Assert.Contains("31 days", ttl);
        Assert.Contains("from 1 minute to 30 days", ttl);
        var sla = errors.GetProperty("sla")[0].GetString()!;
        Assert.Contains("from 10 seconds to 365 days", sla);
        foreach (var form in new[] { "72h", "3d", "72:00:00", "3.00:00:00", "PT72H" })
        {
            Assert.Contains(form, ttl);
            Assert.Contains(form, sla);
        }
        Assert.Contains("from 10 seconds to 365 days", errors.GetProperty("escalation[0].sla")[0].GetString());
        Assert.Contains("from 10 seconds to 365 days", errors.GetProperty("resubmissionWindow")[0].GetString());
    }
}
