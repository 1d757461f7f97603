using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Bulk;

/// <summary>Bulk decisions (<c>Bulk</c> section): how many approvals one bulk call or one portal selection may decide.</summary>
public sealed class BulkOptions
{
    public const string Section = "Bulk";

    /// <summary>The most items one bulk decision takes (a list or a filter's matches); over it the call is a 400 naming the field.</summary>
    [Range(1, 1000)]
    public int MaxItems { get; set; } = 200;

    /// <summary>How many of a tenant's oldest pending approvals a filter looks at.</summary>
    [Range(1, 100_000)]
    public int FilterScanLimit { get; set; } = 5000;
}
