using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Infrastructure.Storage;

public sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>Folder for the embedded Redis data and the SQLite audit database; relative to the content root.</summary>
    [Required]
    public string DataPath { get; set; } = "data";

    /// <summary>SQLite connection string; empty uses <c>{DataPath}/reviewerportal.db</c>.</summary>
    public string? Database { get; set; }

    /// <summary>How long decided approvals stay readable in Redis (their audit history stays forever).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan DecidedRetention { get; set; } = TimeSpan.FromDays(30);

    public string ResolveDataPath(string contentRoot) => Path.GetFullPath(DataPath, contentRoot);
}
