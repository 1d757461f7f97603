using Bunit;
using ReviewerPortal.Components.Pages.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Tests.Features.Audit;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Components;

/// <summary>The audit page tells an admin whether the tenant's history is intact, rewritten or cut short.</summary>
public sealed class AuditHistoryTests : PortalTestContext
{
    protected override IDictionary<string, string?>? AppSettings => new Dictionary<string, string?> { ["Audit:CheckpointEvery"] = "1" };

    private static string Verified(IRenderedComponent<AuditHistory> cut) => cut.Find("[data-testid=audit-verify-result]").TextContent.Trim();

    [Fact]
    public async Task Admin_sees_the_chain_intact_then_truncated_then_rewritten()
    {
        SignIn("ada", Roles.Admin);
        var sequences = await AuditTamperTests.AppendAsync(App, 8);
        var checkpoint = await AuditTamperTests.WaitForCheckpointAsync(App, sequences[^1]);
        var at = DateTimeOffset.Parse((await AuditTamperTests.VerifyAsync(App)).GetProperty("checkpoint").GetProperty("at").GetString()!,
            System.Globalization.CultureInfo.InvariantCulture);
        var cut = Render<AuditHistory>();

        cut.WaitForElement("[data-testid=audit-verify]").Click();
        cut.WaitForAssertion(() => Assert.StartsWith(
            $"Chain intact up to #{sequences[^1]}, last signed checkpoint #{checkpoint}, signed ", Verified(cut)));
        // The signing time reads like every other time: relative, the exact time (the reader's zone, UTC here) on hover.
        Assert.Equal(ReviewerPortal.Features.Reading.TimeText.Exact(at, TimeZoneInfo.Utc),
            cut.Find("[data-testid=audit-verify-result] .rp-when").GetAttribute("title"));

        await using var db = await AuditTamperTests.Sqlite(App);
        await AuditTamperTests.ExecuteAsync(db, $"DELETE FROM AuditEntries WHERE Tenant = 'acme' AND Sequence > {sequences[^4]}");
        cut.Find("[data-testid=audit-verify]").Click();
        cut.WaitForAssertion(() => Assert.Equal(
            $"Truncated: the history ends at #{sequences[^4]} but checkpoint #{checkpoint} exists", Verified(cut)));

        await AuditTamperTests.ExecuteAsync(db, $"UPDATE AuditEntries SET Actor = 'user:mallory' WHERE Sequence = {sequences[2]}");
        cut.Find("[data-testid=audit-verify]").Click();
        cut.WaitForAssertion(() => Assert.StartsWith($"Rewritten at #{sequences[2]}", Verified(cut)));
        Assert.Contains($"Truncated: the history ends at #{sequences[^4]} but checkpoint #{checkpoint} exists", Verified(cut));
    }

    [Fact]
    public void Reviewers_have_no_verify_button()
    {
        SignIn("alice", Roles.Reviewer);

        var cut = Render<AuditHistory>();

        cut.WaitForElement("[data-testid=audit-table]");
        Assert.Empty(cut.FindAll("[data-testid=audit-verify]"));
    }
}
