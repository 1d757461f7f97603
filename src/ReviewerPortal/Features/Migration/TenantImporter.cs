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
public sealed class TenantImporter(
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

    // ---------------------------------------------------------------- settings

    private async Task ImportSettingsAsync(string tenant, int line, ExportSettings item, Caller caller, ImportResult result, CancellationToken cancellationToken)
    {
        if (item.Tenant != tenant)
        {
            result.Errors.Add(new ImportLineError(line, $"Settings of tenant '{item.Tenant}', not '{tenant}'."));
            return;
        }
        var current = await tenants.GetSettingsAsync(tenant)
            ?? throw new InvalidOperationException($"Tenant '{tenant}' is not configured here.");
        var request = item.Settings;
        if (Same(SettingsLines.WithoutSecrets(request), SettingsLines.ToRequest(current, null))
            && (!SettingsLines.HasSecrets(request) || SameSecrets(request, current)))
        {
            result.Unchanged = result.Unchanged with { Settings = 1 };
            return;
        }
        // A webhook sink needs its secret: left out of the export, the one this deployment holds for the same sink is kept.
        if (request.Dispatch is { Kind: DispatchSink.Webhook, Secret: null } dispatch && current.Dispatch is { Kind: DispatchSink.Webhook, Secret: { } kept })
        {
            request = request with { Dispatch = dispatch with { Secret = secrets.Reveal(tenant, kept) } };
        }
        var update = await settingsService.UpdateAsync(current, request, caller, cancellationToken);
        if (update.Errors.Count > 0)
        {
            var missing = update.Errors.Keys.Any(k => k.Contains("secret", StringComparison.OrdinalIgnoreCase) || k.EndsWith("password", StringComparison.OrdinalIgnoreCase))
                ? " (a secret left out of the export: export with includeSecrets=true, or set it here first)"
                : "";
            result.Errors.Add(new ImportLineError(line,
                "Settings not applied: " + string.Join("; ", update.Errors.Select(e => $"{e.Key}: {string.Join(' ', e.Value)}")) + missing));
            result.Warnings.Add("The tenant's settings were not applied: the imported approvals follow this deployment's settings " +
                                "(approvers, SLA, escalation) until they are; fix the settings line's fault and import the file again.");
            return;
        }
        result.Created = result.Created with { Settings = 1 };
    }

    /// <summary>Whether the secrets the line carries are the ones held here (compared decrypted; one that cannot be decrypted here differs).</summary>
    private bool SameSecrets(TenantSettingsRequest request, TenantSettings current)
    {
        try
        {
            return Same(request, SettingsLines.ToRequest(current, secrets));
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static bool Same(TenantSettingsRequest a, TenantSettingsRequest b) =>
        JsonSerializer.Serialize(a, MigrationJsonContext.Default.TenantSettingsRequest)
        == JsonSerializer.Serialize(b, MigrationJsonContext.Default.TenantSettingsRequest);

    // ---------------------------------------------------------------- policies

    private async Task ImportPolicyAsync(string tenant, int line, ExportPolicy item, Caller caller, ExportHeader header, ImportResult result,
        CancellationToken cancellationToken)
    {
        if (item.Tenant != tenant)
        {
            result.Errors.Add(new ImportLineError(line, $"A policy of tenant '{item.Tenant}', not '{tenant}'.", item.Snapshot));
            return;
        }
        var parsed = PolicyParser.Parse(item.Yaml);
        if (parsed.Document is not { } document)
        {
            result.Errors.Add(new ImportLineError(line, "The policy does not parse: " + string.Join("; ", parsed.Errors.Select(e => e.ToString())), item.Snapshot));
            return;
        }
        if (document.Snapshot != item.Snapshot)
        {
            result.Errors.Add(new ImportLineError(line, $"The policy's snapshot is {document.Snapshot}, not {item.Snapshot}: the YAML was altered.", item.Snapshot));
            return;
        }
        var entry = audit.NewEntry(tenant, caller.Actor, "policy_imported");
        entry.PolicySnapshot = item.Snapshot;
        entry.Reason = $"version {item.Version} at the source, published {item.PublishedAt:O} by {item.PublishedBy}{(item.Current ? "; current there" : "")}";
        entry.Details = $"from the export of {header.ExportedAt:O}";
        var ms = item.PublishedAt.ToUnixTimeMilliseconds();
        var (status, _) = await audit.RecordAsync(entry, async json =>
        {
            var r = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.ImportPolicy,
            [
                RedisKeys.PolicyCurrent(tenant), RedisKeys.PolicyVersion(tenant, item.Snapshot), RedisKeys.PolicyHistory(tenant),
                RedisKeys.PolicyCounter(tenant), RedisKeys.AuditOutbox(tenant),
            ],
            [
                item.Snapshot, $"{item.Snapshot}|{ms}|{item.PublishedBy}", item.Current ? "1" : "0", json,
                "yaml", item.Yaml, "publishedAt", ms, "publishedBy", item.PublishedBy,
            ]));
            return (r.Status == "ok", r);
        }, cancellationToken);
        if (status == "ok")
        {
            result.Created = result.Created with { Policies = result.Created.Policies + 1 };
            return;
        }
        result.Unchanged = result.Unchanged with { Policies = result.Unchanged.Policies + 1 };
        if (item.Current && await policies.GetCurrentSnapshotAsync(tenant) is { } here && here != item.Snapshot)
        {
            result.Warnings.Add($"Line {line}: the source's current policy {item.Snapshot} is known here already, and this deployment's current policy " +
                                $"{here} is kept; approvals bound to {item.Snapshot} cannot be approved until it is current (publish it, or re-evaluate them).");
        }
    }

    // ---------------------------------------------------------------- approvals

    private async Task ImportApprovalAsync(string tenant, int line, ExportApproval item, Caller caller, ExportHeader header, ImportResult result,
        CancellationToken cancellationToken)
    {
        if (ValidateApproval(tenant, item) is { } problem)
        {
            result.Errors.Add(new ImportLineError(line, problem, item.Approval?.Id));
            return;
        }
        var a = item.Approval with { TraceParent = item.TraceParent }; // the agent's trace goes on here
        if (!result.Warnings.Any(w => w.Contains(a.PolicySnapshot, StringComparison.Ordinal))
            && await policies.GetVersionAsync(tenant, a.PolicySnapshot) is null)
        {
            result.Warnings.Add($"Line {line} (and any other approval bound to it): policy version {a.PolicySnapshot} is not known here; " +
                                "such approvals cannot be approved until it is published here (or they are re-evaluated).");
        }
        var key = RedisKeys.Approval(tenant, a.Id);
        switch (await Existing(key, a.Id, a.State, a.Seq, line, result))
        {
            case true:
                result.Unchanged = result.Unchanged with { Approvals = result.Unchanged.Approvals + 1 };
                return;
            case false:
                return;
        }
        var now = time.GetUtcNow();
        var margin = approvalOptions.Value.ExpirySafetyMargin;
        var keepUntil = item.RecordExpiresAt ?? a.ExpiresAt + margin;
        // A deadline that passed during the move must still find its record: it lives at least one safety margin more.
        var ttl = keepUntil - now < margin ? margin : keepUntil - now;

        var entry = audit.NewEntry(tenant, caller.Actor, "approval_imported");
        entry.ApprovalId = a.Id;
        entry.JobId = a.JobId;
        entry.ToState = a.State;
        entry.PolicySnapshot = a.PolicySnapshot;
        entry.JobHash = a.JobHash;
        entry.Reason = $"imported {a.State} at seq {a.Seq}: version {a.Version}, escalation level {a.EscalationLevel}, {a.Votes.Count} vote(s), " +
                       $"{a.RemindersSent} reminder(s) sent; expires {a.ExpiresAt:O}";
        entry.Details = $"from the export of {header.ExportedAt:O}; timers {string.Join(", ", item.Timers.Select(t => $"{t.Kind} {t.DueAt:O}"))}";

        // The id → tenant index is outside the tenant's slot: written first, an orphan at worst (pruned hourly).
        await Db.HashSetAsync(RedisKeys.ApprovalIndex, a.Id, tenant);
        List<RedisValue> args =
        [
            a.Id,
            a.IdempotencyKey is null ? "" : "approval:" + a.Id,
            (long)ttl.TotalMilliseconds,
            "", // the audit entry, below
            a.CreatedAt.ToUnixTimeMilliseconds(),
            item.Timers.Count,
        ];
        foreach (var t in item.Timers)
        {
            args.Add(t.DueAt.ToUnixTimeMilliseconds());
            args.Add(t.Kind + "|" + a.Id);
        }
        var jobIds = a.Lineage.Select(v => v.JobId).Append(a.JobId).Distinct().ToList();
        args.Add(jobIds.Count);
        foreach (var jobId in jobIds)
        {
            args.Add(jobId);
            args.Add(DispatchMember.ForApproval(a.Id));
        }
        foreach (var (name, value) in RedisApprovalStore.RecordFields(a))
        {
            args.Add(name);
            args.Add(value);
        }
        var (status, value1) = await audit.RecordAsync(entry, async json =>
        {
            args[3] = json;
            var r = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.ImportApproval,
            [
                key, RedisKeys.Idempotency(tenant, a.IdempotencyKey ?? "-"), RedisKeys.AuditOutbox(tenant),
                RedisKeys.StateSet(tenant, a.State), RedisKeys.Timers(tenant), RedisKeys.JobIndex(tenant),
            ], [.. args]));
            return (r.Status == "ok", r);
        }, cancellationToken);
        switch (status)
        {
            case "ok":
                result.Created = result.Created with { Approvals = result.Created.Approvals + 1 };
                await feed.PublishAsync(new ApprovalChange(tenant, a.Id, a.State, "imported", now, a.NextTimer?.DueAt));
                break;
            case "exists":
                // Another import got there first: what it holds now decides how this line is reported.
                if (await Existing(key, a.Id, a.State, a.Seq, line, result) is true)
                {
                    result.Unchanged = result.Unchanged with { Approvals = result.Unchanged.Approvals + 1 };
                }
                break;
            default:
                result.Errors.Add(new ImportLineError(line,
                    $"Idempotency key '{a.IdempotencyKey}' is held here by {value1}, another approval; nothing stored.", a.Id));
                break;
        }
    }

    /// <summary>
    /// Null when the destination does not hold the item; true when it holds it as exported (unchanged); false when it
    /// holds it in another state or seq (decided or moved on here): then it is reported and left alone.
    /// </summary>
    private async Task<bool?> Existing(RedisKey key, string id, string state, int seq, int line, ImportResult result)
    {
        var here = await Db.HashGetAsync(key, ["state", "seq"]);
        if (here[0].IsNull)
        {
            return null;
        }
        var (hereState, hereSeq) = ((string)here[0]!, (int?)here[1] ?? 0);
        if (hereState == state && hereSeq == seq)
        {
            return true;
        }
        result.Skipped.Add(new ImportSkipped(line, id, hereState, ApprovalStates.IsOpen(hereState)
            ? $"already here, {hereState} at seq {hereSeq} (the export has {state} at seq {seq}): it moved on here; left alone"
            : $"already {hereState} here (the export has it {state}): left alone"));
        return false;
    }

    private static string? ValidateApproval(string tenant, ExportApproval item)
    {
        var a = item.Approval;
        if (a is null)
        {
            return "No 'approval'.";
        }
        if (a.Tenant != tenant)
        {
            return $"An approval of tenant '{a.Tenant}', not '{tenant}'.";
        }
        if (!ApprovalIds.LooksValid(a.Id) || !a.Id.StartsWith("apr_", StringComparison.Ordinal))
        {
            return $"approval.id: '{a.Id}' is not an approval id.";
        }
        if (!ApprovalIds.LooksValid(a.JobId) || a.Lineage.Any(v => !ApprovalIds.LooksValid(v.JobId)))
        {
            return "approval.jobId: not a job id.";
        }
        if (!ApprovalStates.IsOpen(a.State))
        {
            return $"approval.state: '{a.State}' is not an open state (pending, changes_requested); only work in flight moves.";
        }
        if (JobHasher.Hash(tenant, a.Job) != a.JobHash && a.Job.Payload.GetRawText().Contains(Redaction.PayloadMasking.Marker, StringComparison.Ordinal))
        {
            return "approval.job.payload: fields the tenant masks (redactFields) were masked in this export, so the job cannot be "
                + "continued from it; export again with includeSecrets=true to move this approval.";
        }
        if (JobHasher.Hash(tenant, a.Job) != a.JobHash)
        {
            return "approval.jobHash: does not match the job (topic, env, channel, priority, payload): the line was altered.";
        }
        if (string.IsNullOrEmpty(a.PolicySnapshot) || a.Seq < 0 || a.Version < 1)
        {
            return "approval: policySnapshot, seq and version are required.";
        }
        var members = item.Timers.Select(t => t.Kind).ToList();
        if (members.Any(k => k is not ("expire" or "step" or "resubmit")) || members.Distinct().Count() != members.Count)
        {
            return "timers: each of expire, step, resubmit at most once.";
        }
        return null;
    }

    // ---------------------------------------------------------------- cases

    private async Task ImportCaseAsync(string tenant, int line, ExportCase item, Caller caller, ExportHeader header, ImportResult result,
        CancellationToken cancellationToken)
    {
        var c = item.Case;
        if (c is null || c.Tenant != tenant || !ApprovalIds.LooksLikeCase(c.Id) || !CaseStates.IsOpen(c.State) || c.Iterations.Count == 0
            || item.Timers.Any(t => t.Kind != "case") || item.Timers.Count > 1)
        {
            result.Errors.Add(new ImportLineError(line,
                c is null ? "No 'case'."
                : c.Tenant != tenant ? $"A case of tenant '{c.Tenant}', not '{tenant}'."
                : !ApprovalIds.LooksLikeCase(c.Id) ? $"case.id: '{c.Id}' is not a case id."
                : !CaseStates.IsOpen(c.State) ? $"case.state: '{c.State}' is not an open state (documents_requested, in_review)."
                : c.Iterations.Count == 0 ? "case.iterations: at least one."
                : "timers: at most one, of kind 'case'.", c?.Id));
            return;
        }
        var key = RedisKeys.Case(tenant, c.Id);
        var here = (string?)await Db.HashGetAsync(key, "state");
        if (here is not null)
        {
            ReportCase(line, c, here, result);
            return;
        }
        var now = time.GetUtcNow();
        var keyLeft = c.OpenedAt + approvalOptions.Value.IdempotencyWindow - now;
        var idempotent = c.IdempotencyKey is not null && keyLeft > TimeSpan.Zero;
        var entry = audit.NewEntry(tenant, caller.Actor, "case_imported");
        entry.ApprovalId = c.Id;
        entry.ToState = c.State;
        entry.Reason = $"imported {c.State}: iteration {c.Iteration} of {c.MaxIterations}, closes {c.ClosesAt:O}";
        entry.Details = $"from the export of {header.ExportedAt:O}; timers {string.Join(", ", item.Timers.Select(t => $"{t.Kind} {t.DueAt:O}"))}";
        await Db.HashSetAsync(RedisKeys.ApprovalIndex, c.Id, tenant);
        var (status, _) = await audit.RecordAsync(entry, async json =>
        {
            var r = LuaScripts.Status(await Db.ScriptEvaluateAsync(LuaScripts.ImportCase,
            [
                key, RedisKeys.Timers(tenant), RedisKeys.AuditOutbox(tenant), RedisKeys.Cases(tenant),
                RedisKeys.Idempotency(tenant, "case:" + (idempotent ? c.IdempotencyKey : "-")),
            ],
            [
                c.Seq, c.State, JsonSerializer.Serialize(c with { Seq = 0 }, Infrastructure.Json.AppJsonContext.Default.ComplianceCase), json,
                RedisKeys.CaseTimer(c.Id), item.Timers.Count == 1 ? item.Timers[0].DueAt.ToUnixTimeMilliseconds() : "",
                c.Id, c.OpenedAt.ToUnixTimeMilliseconds(), idempotent ? c.Id : "", (long)Math.Max(1, keyLeft.TotalMilliseconds),
            ]));
            return (r.Status == "ok", r);
        }, cancellationToken);
        switch (status)
        {
            case "ok":
                result.Created = result.Created with { Cases = result.Created.Cases + 1 };
                break;
            case "exists":
                ReportCase(line, c, (string?)await Db.HashGetAsync(key, "state") ?? c.State, result);
                break;
            default:
                result.Errors.Add(new ImportLineError(line, $"Idempotency key '{c.IdempotencyKey}' is held here by another case; nothing stored.", c.Id));
                break;
        }
    }

    private static void ReportCase(int line, ComplianceCase c, string here, ImportResult result)
    {
        if (here == c.State)
        {
            result.Unchanged = result.Unchanged with { Cases = result.Unchanged.Cases + 1 };
        }
        else
        {
            result.Skipped.Add(new ImportSkipped(line, c.Id, here, $"already {here} here (the export has it {c.State}): left alone"));
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
