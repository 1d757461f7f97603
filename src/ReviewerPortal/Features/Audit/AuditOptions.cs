using System.ComponentModel.DataAnnotations;
using ReviewerPortal.Infrastructure.Storage;

namespace ReviewerPortal.Features.Audit;

/// <summary>Signed checkpoints of each tenant's audit chain (see <see cref="AuditCheckpoints"/>).</summary>
public sealed class AuditOptions : IValidatableObject
{
    public const string Section = "Audit";

    /// <summary>The scheme of a <see cref="CheckpointPath"/> that names an Azure Blob Storage container.</summary>
    public const string BlobScheme = "azblob://";

    /// <summary>A tenant's head is signed after this many new entries (written by one instance).</summary>
    [Range(1, 1_000_000_000)]
    public int CheckpointEvery { get; set; } = 1000;

    /// <summary>…and at least this often while its history grows.</summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Where, outside the database, the checkpoint log (one log per tenant) and the audit chain's protected key live:
    /// a folder (empty: <c>{Storage:DataPath}/audit-checkpoints</c>; relative to the content root), or an Azure Blob
    /// Storage container as <c>azblob://container/prefix</c> (one append blob per tenant; see <see cref="CheckpointStore"/>).
    /// </summary>
    public string? CheckpointPath { get; set; }

    /// <summary>The object store's connection and the retry of checkpoints it has not taken yet.</summary>
    public CheckpointStoreOptions CheckpointStore { get; set; } = new();

    public bool IsBlobStore => CheckpointPath?.Trim().StartsWith(BlobScheme, StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The container and the name prefix (empty or ending in '/') of an <c>azblob://</c> path.</summary>
    public (string Container, string Prefix) BlobLocation()
    {
        var rest = CheckpointPath!.Trim()[BlobScheme.Length..].Trim('/');
        var slash = rest.IndexOf('/');
        return slash < 0 ? (rest, "") : (rest[..slash], rest[(slash + 1)..].Trim('/') + "/");
    }

    public string ResolveCheckpointPath(StorageOptions storage, string contentRoot) =>
        string.IsNullOrWhiteSpace(CheckpointPath)
            ? Path.Combine(storage.ResolveDataPath(contentRoot), "audit-checkpoints")
            : Path.GetFullPath(CheckpointPath, contentRoot);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (CheckpointStore.RetryInterval < TimeSpan.FromSeconds(1) || CheckpointStore.RetryInterval > TimeSpan.FromHours(1))
        {
            yield return new ValidationResult("Audit:CheckpointStore:RetryInterval must be between 00:00:01 and 01:00:00.",
                ["CheckpointStore:RetryInterval"]);
        }
        if (!IsBlobStore)
        {
            yield break;
        }
        var (container, _) = BlobLocation();
        // Azure's container names: 3..63 lowercase letters, digits and single hyphens.
        if (!System.Text.RegularExpressions.Regex.IsMatch(container, "^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"))
        {
            yield return new ValidationResult(
                $"Audit:CheckpointPath names the container '{container}', which is not a valid Azure container name " +
                "(3..63 lowercase letters, digits and hyphens): use azblob://container/prefix.", [nameof(CheckpointPath)]);
        }
        if (string.IsNullOrWhiteSpace(CheckpointStore.ConnectionString))
        {
            yield return new ValidationResult(
                "Audit:CheckpointStore:ConnectionString is required when Audit:CheckpointPath is an azblob:// path.",
                ["CheckpointStore:ConnectionString"]);
        }
    }
}

/// <summary>The settings of an object-store checkpoint log (<c>Audit:CheckpointStore</c>).</summary>
public sealed class CheckpointStoreOptions
{
    /// <summary>An Azure Storage connection string (account key or SAS) for an <c>azblob://</c> checkpoint path.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How often checkpoints that the store has not taken yet (they wait in Redis) are tried again.</summary>
    public TimeSpan RetryInterval { get; set; } = TimeSpan.FromSeconds(30);
}
