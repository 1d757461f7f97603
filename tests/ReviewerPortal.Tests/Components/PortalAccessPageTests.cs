using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>
/// What a browser gets from the server for a page it may not open or that does not exist: a portal page with the
/// right status, never a JSON problem; the API keeps its ProblemDetails (security issue #17).
/// </summary>
public sealed partial class PortalAccessPageTests
{
    private static async Task<HttpClient> SignedInAsync(TestApp app, string user)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var form = await client.GetStringAsync("/account/login");
        var signIn = await client.PostAsync("/account/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login",
            ["__RequestVerificationToken"] = Antiforgery().Match(form).Groups[1].Value,
            ["Input.UserName"] = user,
            ["Input.Password"] = $"demo-{user}",
        }));
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        return client;
    }

    private static async Task<string> AssertPageAsync(HttpResponseMessage response, HttpStatusCode status, string text)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.True(System.Net.WebUtility.HtmlDecode(html).Contains(text, StringComparison.Ordinal), html);
        Assert.Contains("rp-brand", html); // inside the portal's layout
        return html;
    }

    [Fact]
    public async Task On_call_opening_a_tenant_admin_gets_a_403_portal_page()
    {
        await using var app = await TestApp.StartAsync();
        using var oscar = await SignedInAsync(app, "oscar");

        var html = await AssertPageAsync(await oscar.GetAsync("/admin/acme"), HttpStatusCode.Forbidden, "You do not have access to this tenant's admin");

        Assert.DoesNotContain("data-testid=\"settings\"", html);
    }

    [Fact]
    public async Task Another_tenants_approval_and_an_unknown_id_are_the_same_404_page()
    {
        await using var app = await TestApp.StartAsync();
        var globex = (await app.Agent("globex").SubmitPayment(12)).Str("approvalId");
        using var alice = await SignedInAsync(app, "alice");

        var other = await AssertPageAsync(await alice.GetAsync($"/approvals/{globex}"), HttpStatusCode.NotFound, "Approval not found");
        var unknown = await AssertPageAsync(await alice.GetAsync("/approvals/apr_unknown"), HttpStatusCode.NotFound, "Approval not found");

        Assert.DoesNotContain("INV-12", other);
        Assert.Equal(NotFoundText(unknown), NotFoundText(other));
    }

    [Fact]
    public async Task Another_tenants_queue_and_cases_are_the_same_404_page_as_a_tenant_that_does_not_exist()
    {
        await using var app = await TestApp.StartAsync();
        using var gina = await SignedInAsync(app, "gina"); // approver of globex only

        var pages = new List<string>();
        foreach (var path in new[] { "/queue/acme", "/queue/nope", "/cases/acme", "/cases/nope" })
        {
            pages.Add(NotFoundText(await AssertPageAsync(await gina.GetAsync(path), HttpStatusCode.NotFound, "Tenant not found")));
        }

        Assert.Single(pages.Distinct());
        Assert.Equal(HttpStatusCode.OK, (await gina.GetAsync("/queue/globex")).StatusCode);
    }

    [Fact]
    public async Task An_unknown_page_is_a_404_portal_page_and_an_unknown_api_route_stays_a_problem()
    {
        await using var app = await TestApp.StartAsync();
        using var alice = await SignedInAsync(app, "alice");

        await AssertPageAsync(await alice.GetAsync("/no/such/page"), HttpStatusCode.NotFound, "Page not found");

        var api = await app.Agent("acme").GetAsync("/api/v1/no-such-route");
        Assert.Equal(HttpStatusCode.NotFound, api.StatusCode);
        Assert.Equal("application/problem+json", api.Content.Headers.ContentType?.MediaType);
    }

    private static string NotFoundText(string html) => NotFoundAlert().Match(html).Value;

    [GeneratedRegex("data-testid=\"not-found\"[^>]*>.*?</div>", RegexOptions.Singleline)]
    private static partial Regex NotFoundAlert();

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();
}
