using System.Net;
using System.Net.Http.Headers;
using System.Text;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Approvals;

/// <summary>
/// Bodies past their route's limit (submit: Approvals:MaxSubmitBytes, 1 MiB; other JSON routes:
/// RequestLimits:MaxJsonBytes, 64 KiB) or nested past RequestLimits:MaxJsonDepth are refused with a 400 naming the
/// limit, without reading them whole, however they are sent; the app stays healthy (security pass item 8, issue #17).
/// </summary>
public sealed class OversizedBodyTests
{
    [Fact]
    public async Task A_chunked_body_of_31_MB_is_a_400_naming_the_body_and_changes_nothing()
    {
        await using var app = await TestApp.StartAsync(kestrel: true); // Kestrel's own limits in play, as in production
        var uri = new Uri(app.BaseUrl);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        // A body of unknown length: sent chunked, with no Content-Length to refuse it by. The answer is read while the
        // body is still being written: the server answers (and may close) long before 31 MB have gone, so a failed
        // write after that is the point, not an error.
        var head = Encoding.ASCII.GetBytes($"POST /api/v1/jobs HTTP/1.1\r\nHost: {uri.Authority}\r\nAuthorization: Bearer demo-acme-agent\r\n" +
                                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        await stream.WriteAsync(head);
        var answer = ReadResponseAsync(stream);
        var chunk = new byte[64 * 1024];
        Array.Fill(chunk, (byte)' ');
        chunk[0] = (byte)'{';
        var framed = Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n").Concat(chunk).Concat("\r\n"u8.ToArray()).ToArray();
        long sent = 0;
        try
        {
            while (sent < 31L * 1024 * 1024 && !answer.IsCompleted)
            {
                await stream.WriteAsync(framed);
                sent += chunk.Length;
                framed.AsSpan(framed.Length - chunk.Length - 2, 1)[0] = (byte)' '; // only the first chunk opens the object
            }
        }
        catch (IOException)
        {
            // the server closed the connection after answering
        }

        var (status, body) = await answer.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(400, status);
        Assert.True(System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("errors").TryGetProperty("body", out _), body);
        Assert.True(sent < 31L * 1024 * 1024, $"the whole body was sent ({sent} bytes) before the answer");
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
    }

    /// <summary>The status and the body (Content-Length or chunked) of one HTTP/1.1 response; ASCII bodies only.</summary>
    private static async Task<(int Status, string Body)> ReadResponseAsync(Stream stream)
    {
        var buffer = new MemoryStream();
        var read = new byte[8192];
        while (true)
        {
            var n = await stream.ReadAsync(read);
            if (n == 0)
            {
                throw new IOException("The connection closed before a whole answer: " + Encoding.ASCII.GetString(buffer.ToArray()));
            }
            buffer.Write(read, 0, n);
            var text = Encoding.ASCII.GetString(buffer.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                continue;
            }
            var headers = text[..end].Split("\r\n");
            var status = int.Parse(headers[0].Split(' ')[1]);
            var rest = text[(end + 4)..];
            if (headers.Any(h => h.Equals("Transfer-Encoding: chunked", StringComparison.OrdinalIgnoreCase)))
            {
                if (!rest.Contains("\r\n0\r\n\r\n", StringComparison.Ordinal) && !rest.StartsWith("0\r\n\r\n", StringComparison.Ordinal))
                {
                    continue;
                }
                var body = new StringBuilder();
                for (var at = 0; ;)
                {
                    var lineEnd = rest.IndexOf("\r\n", at, StringComparison.Ordinal);
                    var size = Convert.ToInt32(rest[at..lineEnd].Split(';')[0], 16);
                    if (size == 0)
                    {
                        return (status, body.ToString());
                    }
                    body.Append(rest, lineEnd + 2, size);
                    at = lineEnd + 2 + size + 2;
                }
            }
            var lengthLine = headers.FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            var length = lengthLine is null ? 0 : int.Parse(lengthLine["Content-Length:".Length..].Trim());
            if (buffer.Length >= end + 4 + length)
            {
                return (status, Encoding.UTF8.GetString(buffer.ToArray(), end + 4, length));
            }
        }
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static string Submission(string payload) =>
        $$"""{"topic":"finance.payment.execute","env":"production","priority":"high","payload":{{payload}}}""";

    private static async Task AssertRefusedNamingAsync(HttpResponseMessage response, string limit)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = (await response.Json()).GetProperty("errors");
        Assert.True(errors.TryGetProperty("body", out var body), errors.ToString());
        Assert.Contains(limit, body[0].GetString());
    }

    [Fact]
    public async Task A_submit_under_the_submit_limit_is_accepted_and_one_over_it_is_a_400_naming_the_setting()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var text = new string('x', 900 * 1024);

        var under = await agent.PostAsync("/api/v1/jobs", Json(Submission($$"""{"invoice":"INV-1","note":"{{text}}"}""")));
        var over = await agent.PostAsync("/api/v1/jobs", Json(Submission($$"""{"invoice":"INV-2","note":"{{text}}{{text[..(200 * 1024)]}}"}""")));

        Assert.Equal(HttpStatusCode.Accepted, under.StatusCode);
        await AssertRefusedNamingAsync(over, "Approvals:MaxSubmitBytes");
        Assert.Equal(1, await app.AuditCountAsync(null, "submitted"));
    }

    [Fact]
    public async Task A_chunked_submit_under_the_limit_is_read_whole_however_it_arrives()
    {
        // No Content-Length: the body is read into a buffer that grows as it arrives (rented, given back after).
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var note = string.Concat(Enumerable.Range(0, 30_000).Select(i => $"{i:x5}"));
        var body = new StreamContent(new TrickleStream(Encoding.UTF8.GetBytes(Submission($$"""{"invoice":"INV-3","note":"{{note}}"}"""))));
        body.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var response = await agent.PostAsync("/api/v1/jobs", body);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Json()).Str("approvalId");
        var approval = await (await agent.GetAsync($"/api/v1/approvals/{id}")).Json();
        Assert.Equal(note, approval.GetProperty("job").GetProperty("payload").GetProperty("note").GetString());
    }

    /// <summary>A stream of unknown length that hands out at most 7,000 bytes a read.</summary>
    private sealed class TrickleStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, 7000));
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, 7000)], cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            base.ReadAsync(buffer, offset, Math.Min(count, 7000), cancellationToken);
    }

    [Fact]
    public async Task The_submit_limit_is_a_setting()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?> { ["Approvals:MaxSubmitBytes"] = "4096" });

        var response = await app.Agent("acme").PostAsync("/api/v1/jobs", Json(Submission($$"""{"note":"{{new string('x', 5000)}}"}""")));

        await AssertRefusedNamingAsync(response, "Approvals:MaxSubmitBytes");
        Assert.Contains("4 KiB", (await response.Json()).GetProperty("errors").GetProperty("body")[0].GetString());
    }

    [Fact]
    public async Task Other_json_routes_take_smaller_bodies()
    {
        await using var app = await TestApp.StartAsync();
        var id = (await app.Agent("acme").SubmitPayment(3)).Str("approvalId");

        // 100 KiB of valid JSON (padding between tokens) for a decision that needs a few bytes.
        var response = await app.Account("alice").PostAsync($"/api/v1/approvals/{id}/approve",
            Json("{\"reason\":\"fine\"" + new string(' ', 100 * 1024) + "}"));

        await AssertRefusedNamingAsync(response, "RequestLimits:MaxJsonBytes");
        Assert.Equal(0, await app.AuditCountAsync(id, "approved"));
    }

    [Fact]
    public async Task A_payload_nested_64_deep_is_a_400_naming_the_depth_limit_and_the_app_stays_healthy()
    {
        await using var app = await TestApp.StartAsync();
        var agent = app.Agent("acme");
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 64)) + "1" + new string('}', 64);

        var response = await agent.PostAsync("/api/v1/jobs", Json(Submission(deep)));

        await AssertRefusedNamingAsync(response, "RequestLimits:MaxJsonDepth");
        Assert.Contains("32", (await response.Json()).GetProperty("errors").GetProperty("body")[0].GetString());
        Assert.Equal(0, await app.AuditCountAsync(null, "submitted"));
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
        // Nesting within the limit is an ordinary payload.
        var shallow = string.Concat(Enumerable.Repeat("{\"a\":", 20)) + "1" + new string('}', 20);
        Assert.Equal(HttpStatusCode.Accepted, (await agent.PostAsync("/api/v1/jobs", Json(Submission(shallow)))).StatusCode);
    }
}
