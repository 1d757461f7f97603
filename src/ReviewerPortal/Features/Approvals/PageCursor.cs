using System.Text.Json;
using ReviewerPortal.Infrastructure.Redis;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Members of the dispatch outbox: <c>approval|apr_…</c> or <c>job|job_…</c>.</summary>
public static class DispatchMember
{
    private const string ApprovalPrefix = "approval|";
    private const string JobPrefix = "job|";

    public static string ForApproval(string approvalId) => ApprovalPrefix + approvalId;
    public static string ForJob(string jobId) => JobPrefix + jobId;

    /// <summary>The approval a member stands for, or null for an allowed job's (or no member).</summary>
    public static string? ApprovalIdOf(string? member) =>
        member?.StartsWith(ApprovalPrefix, StringComparison.Ordinal) == true ? member[ApprovalPrefix.Length..] : null;

    /// <summary>The allowed job a member stands for, or null for an approval's (or no member).</summary>
    public static string? JobIdOf(string? member) =>
        member?.StartsWith(JobPrefix, StringComparison.Ordinal) == true ? member[JobPrefix.Length..] : null;

    /// <summary>The record a member stands for: an approval's or an allowed job's hash.</summary>
    public static RedisKey RecordKey(string tenant, string member) =>
        ApprovalIdOf(member) is { } approvalId
            ? RedisKeys.Approval(tenant, approvalId)
            : RedisKeys.Job(tenant, member[JobPrefix.Length..]);
}

/// <summary>Opaque paging cursor: the last (score, id) of the previous page, base64url-encoded.</summary>
public static class PageCursor
{
    public static string Format(long score, string id) =>
        Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{score}:{id}")).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static bool TryParse(string? cursor, out double score, out string id)
    {
        score = 0;
        id = "";
        if (string.IsNullOrEmpty(cursor))
        {
            return false;
        }
        try
        {
            var padded = cursor.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - padded.Length % 4) % 4);
            var text = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(padded));
            var colon = text.IndexOf(':');
            if (colon <= 0 || !long.TryParse(text[..colon], out var s))
            {
                return false;
            }
            score = s;
            id = text[(colon + 1)..];
            return id.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
