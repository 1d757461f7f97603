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

public sealed partial class TenantImporter
{
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
}
