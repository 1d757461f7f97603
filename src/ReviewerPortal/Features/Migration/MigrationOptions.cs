using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Migration;

/// <summary>The in-flight export and import (moving a tenant's open work to another deployment).</summary>
public sealed class MigrationOptions
{
    public const string Section = "Migration";

    /// <summary>The largest import body accepted (NDJSON); a longer body is refused at the line that crosses it.</summary>
    [Range(1024, long.MaxValue)]
    public long MaxImportBytes { get; set; } = 256L * 1024 * 1024;

    public string ImportLimitSetting => $"{Section}:{nameof(MaxImportBytes)}";
}
