using ReviewerPortal.Features.Audit;

namespace ReviewerPortal.Tests.Features.Audit;

/// <summary>An exported reason that a spreadsheet would run as a formula is defused (security pass: CSV injection).</summary>
public sealed class AuditCsvTests
{
    [Theory]
    [InlineData("=HYPERLINK(\"http://x\")")]
    [InlineData("+1+cmd|' /C calc'!A0")]
    [InlineData("-2+3")]
    [InlineData("@SUM(A1)")]
    [InlineData("\t=1+1")]
    [InlineData("\r=1+1")]
    public void A_value_that_starts_a_formula_is_exported_as_text(string reason)
    {
        var csv = AuditCsv.Write([new AuditEntry { EntryId = "e", Tenant = "acme", Actor = "user:mallory", Action = "approve_refused", Reason = reason, Hash = "h" }]);

        var field = csv.Split('\n')[1].Split(',')[9].Trim('"');
        Assert.StartsWith("'", field);
    }
}
