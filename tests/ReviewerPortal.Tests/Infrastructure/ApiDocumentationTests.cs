using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure;

/// <summary>
/// The OpenAPI document is complete enough to generate clients from and to try the API from its reference page:
/// who may call each operation (bearer schemes), every request body, every status the README's API table lists with
/// its problem codes, a description everywhere.
/// </summary>
public sealed partial class ApiDocumentationTests : IAsyncLifetime
{
    private static readonly HashSet<string> Statuses = ["200", "201", "202", "204", "400", "401", "403", "404", "409", "423", "429", "503"];
    // Slack's clicks carry no bearer: they are authenticated by the tenant's signing secret (see SlackTests).
    private static readonly HashSet<string> Anonymous = ["GET /healthz", "GET /api/v1/tenants/{tenant}/keys", "POST /api/v1/integrations/slack/interactions"];
    private static readonly HashSet<string> WithoutBody = ["POST /api/v1/tenants/{tenant}/keys/rotate"];

    private TestApp _app = null!;
    private JsonElement _document;

    public async Task InitializeAsync()
    {
        _app = await TestApp.StartAsync();
        _document = await (await _app.CreateClient().GetAsync("/openapi/v1.json")).Json();
    }

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private IEnumerable<(string Key, JsonElement Operation)> Operations() =>
        _document.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(m => ($"{m.Name.ToUpperInvariant()} {p.Name}", m.Value)));

    [Fact]
    public void Every_operation_but_the_anonymous_ones_names_its_bearer_scheme()
    {
        var schemes = _document.GetProperty("components").GetProperty("securitySchemes");
        foreach (var name in new[] { "agentKey", "apiToken" })
        {
            Assert.Equal("http", schemes.GetProperty(name).GetProperty("type").GetString());
            Assert.Equal("bearer", schemes.GetProperty(name).GetProperty("scheme").GetString());
        }
        var missing = Operations()
            .Where(o => !Anonymous.Contains(o.Key))
            .Where(o => !o.Operation.TryGetProperty("security", out var security) || security.GetArrayLength() == 0)
            .Select(o => o.Key).ToList();
        Assert.Empty(missing);
        Assert.Equal("agentKey", Operation("POST /api/v1/jobs").GetProperty("security")[0].EnumerateObject().Single().Name);
        Assert.Equal("apiToken", Operation("POST /api/v1/approvals/{id}/approve").GetProperty("security")[0].EnumerateObject().Single().Name);
        foreach (var open in Anonymous)
        {
            Assert.False(Operation(open).TryGetProperty("security", out var security) && security.GetArrayLength() > 0, open);
        }
    }

    [Fact]
    public void Every_POST_and_PUT_describes_its_request_body()
    {
        var missing = Operations()
            .Where(o => (o.Key.StartsWith("POST ", StringComparison.Ordinal) || o.Key.StartsWith("PUT ", StringComparison.Ordinal)) && !WithoutBody.Contains(o.Key))
            .Where(o => !o.Operation.TryGetProperty("requestBody", out var body) || !body.GetProperty("content").EnumerateObject().Any())
            .Select(o => o.Key).ToList();
        Assert.Empty(missing);
        var submit = Operation("POST /api/v1/jobs").GetProperty("requestBody").GetProperty("content").GetProperty("application/json");
        Assert.True(submit.TryGetProperty("schema", out _));
        Assert.True(submit.TryGetProperty("example", out _), "the submit call has an example");
        Assert.True(Operation("PUT /api/v1/tenants/{tenant}/policy").GetProperty("requestBody").GetProperty("content").TryGetProperty("application/yaml", out _));
    }

    [Fact]
    public void Every_operation_has_a_description()
    {
        var missing = Operations()
            .Where(o => !o.Operation.TryGetProperty("description", out var d) || string.IsNullOrWhiteSpace(d.GetString()))
            .Select(o => o.Key).ToList();
        Assert.Empty(missing);
    }

    [Fact]
    public void Every_status_and_problem_code_of_the_README_API_table_is_documented()
    {
        var rows = ApiTableRows();
        Assert.True(rows.Count >= 20, $"the README's API table was not found ({rows.Count} rows)");
        var failures = new List<string>();
        foreach (var (calls, answers) in rows)
        {
            var operations = calls.SelectMany(Find).ToList();
            if (operations.Count == 0)
            {
                failures.Add($"{string.Join(", ", calls)}: no such operation in the document");
                continue;
            }
            foreach (var segment in answers.Split('·', StringSplitOptions.TrimEntries))
            {
                var status = StatusPattern().Match(segment) is { Success: true } m && Statuses.Contains(m.Value) ? m.Value : null;
                if (status is null)
                {
                    continue;
                }
                var documented = operations.Where(o => o.Operation.GetProperty("responses").TryGetProperty(status, out _)).ToList();
                if (documented.Count == 0)
                {
                    failures.Add($"{string.Join(", ", operations.Select(o => o.Key))}: {status} is not documented");
                    continue;
                }
                if (status[0] is '4' or '5')
                {
                    foreach (var code in CodePattern().Matches(segment).Select(c => c.Groups[1].Value))
                    {
                        if (!documented.Any(o => o.Operation.GetProperty("responses").GetProperty(status).GetProperty("description").GetString()!.Contains($"`{code}`", StringComparison.Ordinal)))
                        {
                            failures.Add($"{string.Join(", ", documented.Select(o => o.Key))}: {status} does not name `{code}`");
                        }
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task The_interactive_API_reference_is_served()
    {
        var response = await _app.CreateClient().GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("\"url\":\"openapi/v1.json\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var script = await _app.CreateClient().GetAsync("/scalar/scalar.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    private JsonElement Operation(string key) => Operations().Single(o => o.Key == key).Operation;

    /// <summary>Operations for one call of the table: <c>GET/PUT /path</c>, <c>…/suffix</c>; <c>{t}</c> matches any parameter name.</summary>
    private IEnumerable<(string Key, JsonElement Operation)> Find(string call)
    {
        var space = call.IndexOf(' ', StringComparison.Ordinal);
        var methods = call[..space].Split('/');
        var path = call[(space + 1)..];
        var literal = path.StartsWith('…') ? path[1..] : path;
        var pattern = (path.StartsWith('…') ? "^.*" : "^") + string.Join(@"\{[^}]+\}", ParameterPattern().Split(literal).Select(Regex.Escape)) + "$";
        return Operations().Where(o =>
        {
            var parts = o.Key.Split(' ', 2);
            return methods.Contains(parts[0]) && Regex.IsMatch(parts[1], pattern);
        });
    }

    /// <summary>The README's HTTP API table: each row's calls (with <c>· `/reject`</c>-style siblings expanded) and its answers.</summary>
    private static List<(List<string> Calls, string Answers)> ApiTableRows()
    {
        var readme = File.ReadAllLines(Path.Combine(TestPaths.Repo, "README.md"));
        var start = Array.FindIndex(readme, l => l.StartsWith("| Call | Who | Answers |", StringComparison.Ordinal));
        var rows = new List<(List<string>, string)>();
        for (var i = start + 2; start >= 0 && i < readme.Length && readme[i].StartsWith('|'); i++)
        {
            var cells = readme[i].Split(" | ");
            var callCell = cells[0].TrimStart('|', ' ');
            var calls = new List<string>();
            string? previous = null;
            foreach (Match m in CallPattern().Matches(callCell))
            {
                var text = m.Groups[1].Value.Split('?')[0];
                if (text.StartsWith('/') && previous is not null)
                {
                    // `/reject` after `POST /api/v1/approvals/{id}/approve`: the sibling of the previous call.
                    var space = previous.IndexOf(' ', StringComparison.Ordinal);
                    text = previous[..space] + " " + previous[(space + 1)..previous.LastIndexOf('/')] + text;
                }
                else if (!char.IsUpper(text[0]))
                {
                    continue; // a body shape or another code span
                }
                calls.Add(text);
                previous = text;
            }
            calls = [.. calls.Where(c => c.Contains(" /", StringComparison.Ordinal) || c.Contains(" …", StringComparison.Ordinal))
                .Where(c => !c.Contains("/hubs/", StringComparison.Ordinal))];
            if (calls.Count > 0)
            {
                rows.Add((calls, cells[^1].TrimEnd('|', ' ')));
            }
        }
        return rows;
    }

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex CallPattern();

    [GeneratedRegex(@"\b[2-5]\d\d\b")]
    private static partial Regex StatusPattern();

    [GeneratedRegex(@"`([a-z]+(?:_[a-z]+)+)`")]
    private static partial Regex CodePattern();

    [GeneratedRegex(@"\{[^}]+\}")]
    private static partial Regex ParameterPattern();
}
