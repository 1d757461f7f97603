using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Approvals.Links;

/// <summary>Where people reach the portal from outside (<c>Portal:PublicBaseUrl</c>): links in notifications are absolute.</summary>
public sealed class PortalOptions : IValidatableObject
{
    public const string Section = "Portal";

    /// <summary>
    /// The portal's public address, e.g. <c>https://approvals.example.com/</c> (a path prefix is kept). Null: notifications
    /// carry no links (an e-mail cannot use a relative one).
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (PublicBaseUrl is { Length: > 0 } url
            && (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || uri.Query.Length > 0 || uri.Fragment.Length > 0))
        {
            yield return new ValidationResult("An absolute http(s) address without query or fragment, e.g. https://approvals.example.com/.",
                [nameof(PublicBaseUrl)]);
        }
    }

    /// <summary>The base address ending in '/', or null when none is set.</summary>
    public Uri? BaseUri => string.IsNullOrWhiteSpace(PublicBaseUrl) ? null
        : new Uri(PublicBaseUrl.EndsWith('/') ? PublicBaseUrl : PublicBaseUrl + "/", UriKind.Absolute);
}

/// <summary>Action links (<c>ActionLinks</c>): the approve and reject links notifications carry to each eligible approver.</summary>
public sealed class ActionLinkOptions
{
    public const string Section = "ActionLinks";

    /// <summary>Whether notifications carry action links at all (they also need <c>Portal:PublicBaseUrl</c>).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The longest a link lives; it never outlives the approval's own expiry. Default 24 hours.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "30.00:00:00")]
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromHours(24);
}
