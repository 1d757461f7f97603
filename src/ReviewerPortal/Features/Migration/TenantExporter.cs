using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
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

/// <summary>
/// Writes a tenant's in-flight state as NDJSON (<see cref="InflightFormat"/>), a page at a time: nothing but the
/// current page of approvals or cases is held in memory. The export is audited (<c>tenant_exported</c>, with its counts).
/// </summary>
public sealed class TenantExporter(
    RedisConnection redis,
    IApprovalStore approvals,
    CaseStore cases,
    TenantStore tenants,
    PolicyStore policies,
    TenantSecrets secrets,
    AuditLog audit,
    TimeProvider time,
    ILogger<TenantExporter> logger)
{
    private const int Page = 200;

    private IDatabase Db => redis.Database;

    public async Task WriteAsync(string tenant, bool includeSecrets, Caller caller, Stream output, CancellationToken cancellationToken)
    {
        var settings = await tenants.GetSettingsAsync(tenant)
            ?? throw new InvalidOperationException($"Tenant '{tenant}' vanished while it was exported.");
        var writer = new LineWriter(output);
        var counts = new ExportCounts();
        var secretsMode = includeSecrets ? "included" : "omitted";
        var complete = false;
        try
        {
            await writer.WriteAsync(new ExportHeader
            {
                Format = InflightFormat.Name,
                Version = InflightFormat.Version,
                Tenant = tenant,
                ExportedAt = time.GetUtcNow(),
                Secrets = secretsMode,
            }, MigrationJsonContext.Default.ExportHeader, cancellationToken);

            await writer.WriteAsync(new ExportSettings { Tenant = tenant, Settings = SettingsLines.ToRequest(settings, includeSecrets ? secrets : null) },
                MigrationJsonContext.Default.ExportSettings, cancellationToken);
            counts = counts with { Settings = 1 };

            counts = counts with { Policies = await WritePoliciesAsync(tenant, writer, cancellationToken) };
            // Payload fields the tenant masks for people are secrets too: masked unless secrets were asked for (the
            // destination then refuses those approvals, whose job hash is over the original, and says why).
            var masked = includeSecrets ? [] : settings.Redaction.Fields;
            counts = counts with { Approvals = await WriteApprovalsAsync(tenant, masked, writer, cancellationToken) };
            counts = counts with { Cases = await WriteCasesAsync(tenant, writer, cancellationToken) };

            await writer.WriteAsync(new ExportTrailer
            {
                Counts = counts,
                Lines = writer.Lines + 1,
                Secrets = secretsMode,
                OmittedSecrets = includeSecrets ? [] : [.. SettingsLines.SecretFields(settings), .. masked.Select(f => "payload." + f)],
            }, MigrationJsonContext.Default.ExportTrailer, cancellationToken);
            await output.FlushAsync(cancellationToken);
            complete = true;
        }
        finally
        {
            await AuditAsync(tenant, caller, counts, secretsMode, writer, complete);
        }
    }

    private async Task AuditAsync(string tenant, Caller caller, ExportCounts counts, string secretsMode, LineWriter writer, bool complete)
    {
        try
        {
            var entry = audit.NewEntry(tenant, caller.Actor, "tenant_exported");
            entry.Reason = complete ? "in-flight export (reviewerportal.inflight v1)" : "in-flight export cut short (the client went away or a read failed)";
            entry.Details = $"settings {counts.Settings}, policies {counts.Policies}, approvals {counts.Approvals}, cases {counts.Cases}; " +
                            $"{writer.Lines} lines, {writer.Bytes} bytes; secrets {secretsMode}";
            // The client may be gone: the audit row is written regardless.
            await audit.AppendAsync(entry, CancellationToken.None);
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "The export of {Tenant} could not be audited", tenant);
            throw;
        }
    }

    private async Task<int> WritePoliciesAsync(string tenant, LineWriter writer, CancellationToken cancellationToken)
    {
        var history = (await policies.HistoryAsync(tenant)).Reverse().ToList(); // oldest first
        var current = await policies.GetCurrentSnapshotAsync(tenant);
        var lastCurrent = history.FindLastIndex(h => h.Snapshot == current);
        for (var i = 0; i < history.Count; i++)
        {
            var h = history[i];
            var version = await policies.GetVersionAsync(tenant, h.Snapshot)
                ?? throw new InvalidOperationException($"Policy version {h.Snapshot} of {tenant} is in the history but not stored.");
            await writer.WriteAsync(new ExportPolicy
            {
                Tenant = tenant,
                Version = h.Version,
                Snapshot = h.Snapshot,
                Yaml = version.Yaml,
                PublishedAt = h.PublishedAt,
                PublishedBy = h.PublishedBy,
                Current = i == lastCurrent,
            }, MigrationJsonContext.Default.ExportPolicy, cancellationToken);
        }
        return history.Count;
    }

    private async Task<int> WriteApprovalsAsync(string tenant, IReadOnlyList<string> masked, LineWriter writer, CancellationToken cancellationToken)
    {
        var written = 0;
        foreach (var state in new[] { ApprovalStates.Pending, ApprovalStates.ChangesRequested })
        {
            string? cursor = null;
            do
            {
                var page = await approvals.ListAsync(tenant, state, cursor, Page);
                cursor = page.NextCursor;
                // One pipelined read of the page's timers and record lifetimes.
                var timers = page.Items.Select(a => Task.WhenAll(RedisKeys.ApprovalTimers(a.Id)
                    .Select(m => Db.SortedSetScoreAsync(RedisKeys.Timers(tenant), m)))).ToList();
                var lifetimes = page.Items.Select(a => Db.KeyTimeToLiveAsync(RedisKeys.Approval(tenant, a.Id))).ToList();
                var now = time.GetUtcNow();
                for (var i = 0; i < page.Items.Count; i++)
                {
                    var a = page.Items[i];
                    var scores = await timers[i];
                    var members = RedisKeys.ApprovalTimers(a.Id);
                    var ttl = await lifetimes[i];
                    await writer.WriteAsync(new ExportApproval
                    {
                        Approval = WithExportedPayloads(a, masked),
                        Timers = [.. members.Select((m, j) => scores[j] is { } due
                                ? new ExportTimer(m[..m.IndexOf('|')], DateTimeOffset.FromUnixTimeMilliseconds((long)due))
                                : null)
                            .OfType<ExportTimer>()],
                        RecordExpiresAt = ttl is { } left ? now + left : null,
                        TraceParent = a.TraceParent,
                    }, MigrationJsonContext.Default.ExportApproval, cancellationToken);
                    written++;
                }
                await writer.FlushAsync(cancellationToken);
            }
            while (cursor is not null);
        }
        return written;
    }

    private async Task<int> WriteCasesAsync(string tenant, LineWriter writer, CancellationToken cancellationToken)
    {
        var written = 0;
        for (long start = 0; ; start += Page)
        {
            var ids = await Db.SortedSetRangeByRankAsync(RedisKeys.Cases(tenant), start, start + Page - 1);
            var loaded = await Task.WhenAll(ids.Select(id => cases.GetAsync(tenant, (string)id!)));
            var open = loaded.Where(c => c is not null && CaseStates.IsOpen(c.State)).Select(c => c!).ToList();
            var dues = await Task.WhenAll(open.Select(c => Db.SortedSetScoreAsync(RedisKeys.Timers(tenant), RedisKeys.CaseTimer(c.Id))));
            for (var i = 0; i < open.Count; i++)
            {
                await writer.WriteAsync(new ExportCase
                {
                    Case = WithExportedPayloads(open[i]),
                    Timers = dues[i] is { } due ? [new ExportTimer("case", DateTimeOffset.FromUnixTimeMilliseconds((long)due))] : [],
                }, MigrationJsonContext.Default.ExportCase, cancellationToken);
                written++;
            }
            await writer.FlushAsync(cancellationToken);
            if (ids.Length < Page)
            {
                return written;
            }
        }
    }

    private static Approval WithExportedPayloads(Approval a, IReadOnlyList<string> masked) => a with
    {
        Job = a.Job with { Payload = ExportedPayload(a.Job.Payload, masked) },
        Lineage = [.. a.Lineage.Select(v => v with { Payload = ExportedPayload(v.Payload, masked) })],
    };

    private static ComplianceCase WithExportedPayloads(ComplianceCase c) => c with
    {
        Iterations = [.. c.Iterations.Select(i => i.Documents is { } documents ? i with { Documents = ExportedPayload(documents, []) } : i)],
    };

    /// <summary>
    /// The one place a payload (a job's, an earlier version's, a case's documents) enters the export: as stored, with
    /// the tenant's masked fields (<c>redactFields</c>) masked unless secrets were asked for.
    /// </summary>
    private static JsonElement ExportedPayload(JsonElement payload, IReadOnlyList<string> masked) =>
        masked.Count == 0 ? payload : Redaction.PayloadMasking.Mask(payload, masked);

    /// <summary>Writes one JSON object a line and counts lines and bytes.</summary>
    private sealed class LineWriter(Stream output)
    {
        private static readonly byte[] NewLine = "\n"u8.ToArray();

        public int Lines { get; private set; }
        public long Bytes { get; private set; }

        public async Task WriteAsync<T>(T value, JsonTypeInfo<T> type, CancellationToken cancellationToken)
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(value, type);
            await output.WriteAsync(bytes, cancellationToken);
            await output.WriteAsync(NewLine, cancellationToken);
            Lines++;
            Bytes += bytes.Length + 1;
        }

        public Task FlushAsync(CancellationToken cancellationToken) => output.FlushAsync(cancellationToken);
    }
}
