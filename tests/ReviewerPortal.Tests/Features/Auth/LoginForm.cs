using System.Net;
using System.Text.RegularExpressions;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>The portal's sign-in form, filled in as a browser does (anti-forgery token from the page, cookies kept by the client).</summary>
public static partial class LoginForm
{
    public static async Task<HttpResponseMessage> PostAsync(HttpClient client, string userName, string password, string? address = null)
    {
        var page = await client.GetStringAsync("/account/login");
        var token = Antiforgery().Match(page).Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/account/login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["_handler"] = "login",
                ["__RequestVerificationToken"] = token,
                ["Input.UserName"] = userName,
                ["Input.Password"] = password,
            }),
        };
        if (address is not null)
        {
            request.Headers.Add(ClientAddresses.Header, address);
        }
        return await client.SendAsync(request);
    }

    /// <summary>The error the form shows (null when none), as the user reads it.</summary>
    public static async Task<string?> ErrorAsync(HttpResponseMessage response)
    {
        var match = Error().Match(await response.Content.ReadAsStringAsync());
        return match.Success ? WebUtility.HtmlDecode(match.Groups[1].Value) : null;
    }

    public static bool SignedIn(HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Redirect
        && response.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith("rp.auth=", StringComparison.Ordinal));

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex Antiforgery();

    [GeneratedRegex("data-testid=\"login-error\">([^<]*)<")]
    private static partial Regex Error();
}
