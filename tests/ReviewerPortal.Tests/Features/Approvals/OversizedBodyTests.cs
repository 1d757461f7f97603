using System.Net;
using System.Net.Http.Headers;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>A body past the 256 KiB limit is refused without reading it whole, however it is sent (security pass item 8).</summary>
public sealed class OversizedBodyTests
{
    [Fact]
    public async Task A_chunked_body_of_31_MB_is_a_400_naming_the_body_and_changes_nothing()
    {
        await using var app = await TestApp.StartAsync(kestrel: true); // Kestrel's own limits in play, as in production
        using var http = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
        var huge = new byte[31 * 1024 * 1024];
        Array.Fill(huge, (byte)' ');
        huge[0] = (byte)'{';
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/jobs")
        {
            // A stream of unknown length: sent chunked, with no Content-Length to refuse it by.
            Content = new StreamContent(new NonSeekable(huge)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "demo-acme-agent");

        var response = await http.SendAsync(request); // answered before the client has sent it all

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await response.Json()).GetProperty("errors").TryGetProperty("body", out _));
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
    }

    private sealed class NonSeekable(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
