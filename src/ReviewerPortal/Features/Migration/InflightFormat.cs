using System.Text.Json;
using System.Text.Json.Serialization;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Cases;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Features.Migration;

/// <summary>
/// The in-flight export format <c>reviewerportal.inflight</c>, version 1: NDJSON, one JSON object a line, each with a
/// <c>type</c>: a <c>header</c>, the tenant's <c>settings</c>, its <c>policy</c> versions (oldest first), every open
/// <c>approval</c> and <c>case</c>, and a <c>trailer</c> with the counts. Documented in
/// <c>docs/schemas/inflight-export.v1.schema.json</c>.
/// </summary>
public static class InflightFormat
{
    public const string Name = "reviewerportal.inflight";
    public const int Version = 1;
    public const string MediaType = "application/x-ndjson";

    public const string Header = "header";
    public const string Settings = "settings";
    public const string Policy = "policy";
    public const string Approval = "approval";
    public const string Case = "case";
    public const string Trailer = "trailer";
}

public sealed record ExportHeader
{
    public string Type { get; init; } = InflightFormat.Header;
    public required string Format { get; init; }
    public required int Version { get; init; }
    public required string Tenant { get; init; }
    public required DateTimeOffset ExportedAt { get; init; }

    /// <summary><c>included</c> (decrypted, on the admin's request) or <c>omitted</c>.</summary>
    public required string Secrets { get; init; }
}

public sealed record ExportSettings
{
    public string Type { get; init; } = InflightFormat.Settings;
    public required string Tenant { get; init; }

    /// <summary>In the shape of <c>PUT /api/v1/tenants/{tenant}/settings</c>; secrets null unless included.</summary>
    public required TenantSettingsRequest Settings { get; init; }
}

public sealed record ExportPolicy
{
    public string Type { get; init; } = InflightFormat.Policy;
    public required string Tenant { get; init; }

    /// <summary>The version number at the source (the destination numbers its own history).</summary>
    public required int Version { get; init; }
    public required string Snapshot { get; init; }
    public required string Yaml { get; init; }
    public required DateTimeOffset PublishedAt { get; init; }
    public required string PublishedBy { get; init; }

    /// <summary>The source's current policy.</summary>
    public bool Current { get; init; }
}

/// <summary>One durable timer: <c>expire</c>, <c>step</c> (reminder, escalation or timeout), <c>resubmit</c> or <c>case</c>, and when it is due.</summary>
public sealed record ExportTimer(string Kind, DateTimeOffset DueAt);

public sealed record ExportApproval
{
    public string Type { get; init; } = InflightFormat.Approval;
    public required Approval Approval { get; init; }

    /// <summary>The timers of the approval as they stand in the tenant's timer set.</summary>
    public IReadOnlyList<ExportTimer> Timers { get; init; } = [];

    /// <summary>When the record would leave Redis at the source (its retention); null: no expiry.</summary>
    public DateTimeOffset? RecordExpiresAt { get; init; }

    /// <summary>The agent's trace context (<c>traceparent</c>) of the submit, so the trace goes on at the destination.</summary>
    public string? TraceParent { get; init; }
}

public sealed record ExportCase
{
    public string Type { get; init; } = InflightFormat.Case;
    public required ComplianceCase Case { get; init; }
    public IReadOnlyList<ExportTimer> Timers { get; init; } = [];
}

public sealed record ExportCounts
{
    public int Settings { get; init; }
    public int Policies { get; init; }
    public int Approvals { get; init; }
    public int Cases { get; init; }
}

public sealed record ExportTrailer
{
    public string Type { get; init; } = InflightFormat.Trailer;
    public required ExportCounts Counts { get; init; }

    /// <summary>Every line, header and trailer included.</summary>
    public required int Lines { get; init; }
    public required string Secrets { get; init; }

    /// <summary>The secret fields the tenant has that this file leaves out (set them at the destination).</summary>
    public IReadOnlyList<string> OmittedSecrets { get; init; } = [];
}

/// <summary>One line the import did not store, and why.</summary>
public sealed record ImportLineError(int Line, string Reason, string? Id = null);

/// <summary>An item left alone because the destination holds it already (decided there, or moved on since the first import).</summary>
public sealed record ImportSkipped(int Line, string Id, string State, string Reason);

public sealed record ImportResult
{
    public required string Tenant { get; init; }
    public required string Format { get; init; }
    public required int Version { get; init; }
    public int Lines { get; set; }
    public long Bytes { get; set; }

    /// <summary>What this import wrote.</summary>
    public ExportCounts Created { get; set; } = new();

    /// <summary>What the destination held already, the same as in the file.</summary>
    public ExportCounts Unchanged { get; set; } = new();

    /// <summary>Approvals and cases the destination holds in another state (decided there): left alone.</summary>
    public List<ImportSkipped> Skipped { get; } = [];

    /// <summary>Lines not stored, by line number.</summary>
    public List<ImportLineError> Errors { get; } = [];
    public List<string> Warnings { get; } = [];

    /// <summary>True when every line was stored or found already there, and the trailer's counts match.</summary>
    public bool Complete { get; set; }
}

/// <summary>The export and import JSON (source-generated; unknown fields in an imported line are refused, named).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    UseStringEnumConverter = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    ReadCommentHandling = JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(TenantSettingsRequest))]
[JsonSerializable(typeof(ExportHeader))]
[JsonSerializable(typeof(ExportSettings))]
[JsonSerializable(typeof(ExportPolicy))]
[JsonSerializable(typeof(ExportApproval))]
[JsonSerializable(typeof(ExportCase))]
[JsonSerializable(typeof(ExportTrailer))]
[JsonSerializable(typeof(ImportResult))]
public sealed partial class MigrationJsonContext : JsonSerializerContext;
