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
                RedisKeys.IdempotencyOrNone(tenant, idempotent ? "case:" + c.IdempotencyKey : null),
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
}
