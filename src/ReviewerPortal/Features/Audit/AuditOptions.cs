using System.ComponentModel.DataAnnotations;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Audit;

/// <summary>Signed checkpoints of each tenant's audit chain (see <see cref="AuditCheckpoints"/>).</summary>
public sealed class AuditOptions
{
    public const string Section = "Audit";

    /// <summary>A tenant's head is signed after this many new entries (written by one instance).</summary>
    [Range(1, 1_000_000_000)]
    public int CheckpointEvery { get; set; } = 1000;

    /// <summary>…and at least this often while its history grows.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The folder, outside the database, of the checkpoint log (one JSON-lines file per tenant) and of the audit chain's
    /// protected key; empty: <c>{Storage:DataPath}/audit-checkpoints</c>. Relative to the content root.
    /// </summary>
    public string? CheckpointPath { get; set; }

    public string ResolveCheckpointPath(StorageOptions storage, string contentRoot) =>
        string.IsNullOrWhiteSpace(CheckpointPath)
            ? Path.Combine(storage.ResolveDataPath(contentRoot), "audit-checkpoints")
            : Path.GetFullPath(CheckpointPath, contentRoot);
}
