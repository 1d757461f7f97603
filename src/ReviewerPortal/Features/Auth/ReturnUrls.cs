namespace ReviewerPortal.Features.Auth;

public static class ReturnUrls
{
    /// <summary>
    /// The address to go to after sign-in: only a local one ("/x"; not "//host" nor "/\host", which browsers read as
    /// another host), else "/". Never an open redirect.
    /// </summary>
    public static string LocalOrRoot(string? url) =>
        url is { Length: > 0 } && url[0] == '/' && (url.Length == 1 || url[1] is not ('/' or '\\')) ? url : "/";
}
