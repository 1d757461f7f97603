using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Cases;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Infrastructure.Secrets;
using StackExchange.Redis;

namespace ReviewerPortal.Features.Migration;

/// <summary>The header is not one this version reads: nothing was stored.</summary>
public sealed record ImportRefusal(string Field, string Message);

/// <summary>
/// Recreates a tenant's in-flight state from an export (<see cref="InflightFormat"/>), line by line as the body
/// arrives: the same ids, hashes, seqs, deadlines and timers, each item by one Redis script under the tenant's hash tag
/// with its audit entry (so the audit row and the record are written together). An item the destination holds already
/// is never overwritten: unchanged, it is counted; decided there, it is left alone and reported. A line that is not
/// valid is reported by its number and nothing of it is stored. Deadlines that passed during the move are due timers:
/// the timer service fires them at once, each once.
/// </summary>
public sealed partial class TenantImporter(
    RedisConnection redis,
    TenantStore tenants,
    TenantSettingsService settingsService,
    PolicyStore policies,
    TenantSecrets secrets,
    AuditLog audit,
    ChangeFeed feed,
    ExpirySignal timers,
    IOptions<ApprovalOptions> approvalOptions,
    IOptions<MigrationOptions> options,
    TimeProvider time,
    ILogger<TenantImporter> logger)
{
    private IDatabase Db => redis.Database;

    public async Task<(ImportResult? Result, ImportRefusal? Refused)> ImportAsync(string tenant, Stream body, Caller caller,
        CancellationToken cancellationToken)
    {
        var limited = new CountingStream(body, options.Value.MaxImportBytes);
        using var reader = new StreamReader(limited, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, bufferSize: 64 * 1024);
        var lineNumber = 0;
        ImportResult? result = null;
        ExportHeader? header = null;
        ExportTrailer? trailer = null;
        var seen = new ExportCounts();
        while (true)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync(cancellationToken);
            }
            catch (BodyTooLargeException)
            {
                if (result is null)
                {
                    return (null, new ImportRefusal("body", TooLarge()));
                }
                result.Errors.Add(new ImportLineError(lineNumber + 1, TooLarge() + " Nothing from this line on was read; the lines before it were imported."));
                break;
            }
            if (line is null)
            {
                break;
            }
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            if (header is null)
            {
                (header, var refusal) = ReadHeader(tenant, line);
                if (refusal is not null)
                {
                    return (null, refusal);
                }
                result = new ImportResult { Tenant = tenant, Format = header!.Format, Version = header.Version };
                await EnsureTenantAsync(tenant, result);
                continue;
            }
            if (trailer is not null)
            {
                result!.Errors.Add(new ImportLineError(lineNumber, "A line after the trailer; the trailer ends the export."));
                continue;
            }
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                var type = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
                    ? t.GetString()
                    : null;
                switch (type)
                {
                    case InflightFormat.Settings:
                        seen = seen with { Settings = seen.Settings + 1 };
                        await ImportSettingsAsync(tenant, lineNumber, root.Deserialize(MigrationJsonContext.Default.ExportSettings)!, caller, result!, cancellationToken);
                        break;
                    case InflightFormat.Policy:
                        seen = seen with { Policies = seen.Policies + 1 };
                        await ImportPolicyAsync(tenant, lineNumber, root.Deserialize(MigrationJsonContext.Default.ExportPolicy)!, caller, header, result!, cancellationToken);
                        break;
                    case InflightFormat.Approval:
                        seen = seen with { Approvals = seen.Approvals + 1 };
                        await ImportApprovalAsync(tenant, lineNumber, root.Deserialize(MigrationJsonContext.Default.ExportApproval)!, caller, header, result!, cancellationToken);
                        break;
                    case InflightFormat.Case:
                        seen = seen with { Cases = seen.Cases + 1 };
                        await ImportCaseAsync(tenant, lineNumber, root.Deserialize(MigrationJsonContext.Default.ExportCase)!, caller, header, result!, cancellationToken);
                        break;
                    case InflightFormat.Trailer:
                        trailer = root.Deserialize(MigrationJsonContext.Default.ExportTrailer)!;
                        break;
                    case InflightFormat.Header:
                        result!.Errors.Add(new ImportLineError(lineNumber, "A second header; one export a file."));
                        break;
                    default:
                        result!.Errors.Add(new ImportLineError(lineNumber,
                            type is null ? "Not a JSON object with a 'type'." : $"Unknown type '{type}' (header, settings, policy, approval, case, trailer)."));
                        break;
                }
            }
            catch (JsonException ex)
            {
                result!.Errors.Add(new ImportLineError(lineNumber, Describe(ex)));
            }
        }
        if (result is null)
        {
            return (null, new ImportRefusal("body", $"Empty: the first line must be the {InflightFormat.Name} header."));
        }
        result.Lines = lineNumber;
        result.Bytes = limited.BytesRead;
        if (trailer is null)
        {
            result.Warnings.Add("No trailer: the file may have been cut short.");
        }
        else if (trailer.Counts != seen)
        {
            result.Warnings.Add($"The trailer counts {Counts(trailer.Counts)} but the file holds {Counts(seen)}: the file is not the whole export.");
        }
        if (header!.Secrets != "included" && trailer?.OmittedSecrets is { Count: > 0 } omitted)
        {
            result.Warnings.Add($"The export left out the secrets {string.Join(", ", omitted)}: the destination keeps its own where it has them; set the others in the tenant's settings.");
        }
        result.Complete = result.Errors.Count == 0 && trailer is not null && trailer.Counts == seen;
        await AuditSummaryAsync(tenant, caller, header, result, cancellationToken);
        // Deadlines that passed during the move are due now: the timer service fires them at once.
        timers.Wake();
        return (result, null);
    }

    private string TooLarge() => $"The body is larger than {options.Value.MaxImportBytes} bytes, the limit ({options.Value.ImportLimitSetting}).";

    private static string Counts(ExportCounts c) => $"settings {c.Settings}, policies {c.Policies}, approvals {c.Approvals}, cases {c.Cases}";

    private static (ExportHeader?, ImportRefusal?) ReadHeader(string tenant, string line)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(line);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return (null, new ImportRefusal("body", $"Line 1 is not JSON: the first line must be the {InflightFormat.Name} header."));
        }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.String
            || format.GetString() != InflightFormat.Name)
        {
            return (null, new ImportRefusal("format", $"The first line must be the header of format '{InflightFormat.Name}'."));
        }
        if (!root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v)
            || v != InflightFormat.Version)
        {
            return (null, new ImportRefusal("version",
                $"Format version {(root.TryGetProperty("version", out var given) ? given.GetRawText() : "(none)")} is not supported: this deployment reads version {InflightFormat.Version}. Nothing was stored."));
        }
        ExportHeader header;
        try
        {
            header = root.Deserialize(MigrationJsonContext.Default.ExportHeader)!;
        }
        catch (JsonException ex)
        {
            return (null, new ImportRefusal("header", Describe(ex)));
        }
        if (header.Type != InflightFormat.Header)
        {
            return (null, new ImportRefusal("type", "The first line must have type 'header'."));
        }
        if (header.Tenant != tenant)
        {
            return (null, new ImportRefusal("tenant",
                $"The export is of tenant '{header.Tenant}', not '{tenant}': a tenant's items carry its name in their job hashes and are imported under it only."));
        }
        return (header, null);
    }

    private async Task EnsureTenantAsync(string tenant, ImportResult result)
    {
        if (await tenants.EnsureAsync(new TenantSettings { Tenant = tenant }))
        {
            result.Warnings.Add($"Tenant '{tenant}' did not exist here and was created.");
        }
    }

    // ---------------------------------------------------------------- audit

    private async Task AuditSummaryAsync(string tenant, Caller caller, ExportHeader header, ImportResult result, CancellationToken cancellationToken)
    {
        var entry = audit.NewEntry(tenant, caller.Actor, "tenant_imported");
        entry.Reason = $"in-flight import of the export of {header.ExportedAt:O} ({InflightFormat.Name} v{header.Version}, secrets {header.Secrets})";
        entry.Details = $"created: {Counts(result.Created)}; unchanged: {Counts(result.Unchanged)}; left alone: {result.Skipped.Count}; " +
                        $"invalid lines: {result.Errors.Count}{(result.Errors.Count == 0 ? "" : " (" + string.Join(", ", result.Errors.Select(e => e.Line)) + ")")}; " +
                        $"{result.Lines} lines, {result.Bytes} bytes";
        await audit.AppendAsync(entry, cancellationToken);
        logger.LogInformation("Imported into {Tenant}: {Details}", tenant, entry.Details);
    }

    private static string Describe(JsonException ex) =>
        ex.Path is null or "$"
            ? $"Not valid JSON or not the expected shape: {ex.Message}"
            : $"{ex.Path.TrimStart('$', '.')}: not valid here ({ex.Message})";

    /// <summary>Counts what is read from the body and stops at the limit.</summary>
    private sealed class CountingStream(Stream inner, long limit) : Stream
    {
        public long BytesRead { get; private set; }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            BytesRead += n;
            if (BytesRead > limit)
            {
                throw new BodyTooLargeException();
            }
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read the body asynchronously.");
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private sealed class BodyTooLargeException : Exception;
}
