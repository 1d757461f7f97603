using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Auth;
using ReviewerPortal.Features.Cases;
using ReviewerPortal.Features.Dispatch;
using ReviewerPortal.Features.Tenants;
using Scalar.AspNetCore;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// The OpenAPI document (<c>/openapi/v1.json</c>), complete enough to generate clients from, and the interactive API
/// reference beside it (<c>/scalar/v1</c>): bearer security schemes from each endpoint's authorization policy, every
/// request body (the handlers read theirs themselves), every status the API answers with its problem codes, and a
/// description on every operation. Kept in one place so the endpoint files stay about behaviour.
/// </summary>
public static class ApiDocumentation
{
    public const string AgentKey = "agentKey";
    public const string ApiToken = "apiToken";
    public const string Problem = "Problem";

    public static IHostApplicationBuilder AddApiDocumentation(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer<DocumentTransformer>();
            options.AddOperationTransformer<OperationTransformer>();
        });
        return builder;
    }

    public static IEndpointRouteBuilder MapApiDocumentation(this IEndpointRouteBuilder routes)
    {
        routes.MapOpenApi("/openapi/{documentName}.json");
        routes.MapScalarApiReference("/scalar", options => options
            .WithTitle("ReviewerPortal API")
            .WithOpenApiRoutePattern("/openapi/{documentName}.json")
            .AddPreferredSecuritySchemes([AgentKey, ApiToken]));
        return routes;
    }

    /// <summary>What the endpoint metadata cannot say: the body, the problem answers and a description, by operation id.</summary>
    private sealed record Doc(string Description, Type? Body = null, string? Example = null, params (int Status, string Text)[] Answers)
    {
        /// <summary>The media type of a text body (<see cref="Body"/> <c>typeof(string)</c>): YAML unless named.</summary>
        public string BodyMediaType { get; init; } = "application/yaml";
    }

    private const string NotFound = "`not_found`: no such object for this caller (another tenant's is a 404 too, never a 403).";
    private const string Invalid = "`invalid_request`: `errors` names each field at fault.";
    private const string Unavailable = "`store_unavailable`: Redis, SQLite or PostgreSQL is unavailable; try again.";

    private static readonly Dictionary<string, Doc> Docs = new()
    {
        ["SubmitJob"] = new("An agent asks to run a job. The tenant's policy decides at once: `allow` (200, run it), `require_human` " +
            "(202, an approval waits for a reviewer), `deny` (403) or `throttle` (429). The same `idempotencyKey` answers the first " +
            "submission again (`replayed`), so a retry after a crash attaches to the same approval.", typeof(SubmitJobRequest),
            """{"topic":"finance.payment.execute","env":"production","priority":"high","payload":{"invoice":"INV-7","amount":420},"idempotencyKey":"pay-INV-7"}""",
            (403, "`policy_denied`: the policy denies the job; `ruleId` names the rule."),
            (409, "`idempotency_key_reused`: the key was first used for a different job."),
            (429, "`policy_throttled`: the policy throttles this topic; `Retry-After` says when to try again."),
            (503, "`policy_unavailable`: the policy could not be read, nothing was decided; " + Unavailable)),
        ["GetApproval"] = new("The approval: its state, job, policy snapshot, job hash, votes, escalation and deadlines. " +
            "To an account the payload fields the tenant lists in redactFields read \"[redacted:field]\"; an agent key reads the payload as submitted; the job hash is always over the original.", null, null, (404, NotFound)),
        ["WaitForDecision"] = new("Long-poll: answers when the approval leaves `pending` (decided, expired, withdrawn or changes " +
            "requested) or after `waitSeconds` (at most 60) with the approval as it then is. Call again to go on waiting.", null, null,
            (404, NotFound), (429, "`too_many_waits`: this key or account already holds the most open waits; `Retry-After`.")),
        ["ListApprovals"] = new("A tenant's approvals in one state, oldest first, cursor-paged.", null, null, (404, NotFound)),
        ["Approve"] = new("A reviewer approves. Idempotent: a second call answers `already_approved`; with a quorum each vote " +
            "answers `vote_recorded` until it is met. With `jobHash` / `policySnapshot` the decision is bound to what the reviewer saw.",
            typeof(DecideRequest), """{"reason":"validated invoice and policy context"}""", Decide()),
        ["Reject"] = new("A reviewer rejects (idempotent: `already_rejected`).", typeof(DecideRequest), """{"reason":"wrong vendor"}""", Decide()),
        ["BulkDecide"] = new("A reviewer approves or rejects many approvals with one reason: a list of `items` (each with the " +
            "`jobHash` / `policySnapshot` seen, optional) or a `filter` (`tenant`, `topic` exact or `prefix*`, `env`, `olderThan`, " +
            "`risk` = priority), never both. Each item is decided on its own through the single decision path (lock, hash check, " +
            "eligibility, four-eyes, quorum, audit `via: bulk`); the answer is 200 with each item's `status` as the single " +
            "endpoint would give it (`approved`, `already_approved`, `refused` 403, `conflict` 409, `not_found` 404 for an " +
            "unknown or another tenant's id, `locked` 423). At most `Bulk:MaxItems` items; each counts against the account's rate limit.",
            typeof(Features.Bulk.BulkDecideRequest),
            """{"verdict":"approve","reason":"month-end vendor batch checked","items":[{"id":"apr_01J…","jobHash":"…"}]}""",
            (404, "`not_found`: the filter's tenant is not one this caller reads."),
            (429, "`rate_limited`: the items exceed the account's rate limit (`RateLimits:PerAccount`); nothing was decided; `Retry-After`.")),
        ["Reevaluate"] = new("Re-evaluates a pending approval under the tenant's current policy (a fresh snapshot).", typeof(ReevaluateRequest), null,
            (403, "`not_an_approver`."), (404, NotFound), (409, "The approval is no longer pending (its state is the code)."),
            (423, "`lock_busy`: another decision holds the lock; try again.")),
        ["RequestChanges"] = new("A reviewer sends the job back to its submitter with what to change (`changes_requested`, or " +
            "`rejected` when no resubmission is left).", typeof(RequestChangesRequest), """{"reason":"attach the purchase order"}""",
            (403, "`not_an_approver`."), (404, NotFound), (409, "The approval is not pending (its state is the code)."), (423, "`lock_busy`.")),
        ["Resubmit"] = new("The submitting agent's amended payload after changes were requested: version + 1, a new job id and " +
            "hash, the lineage kept. The same `idempotencyKey` answers `already_resubmitted`.", typeof(ResubmitRequest), null,
            (403, "`policy_denied`: the policy denies the amended job; `not_the_submitter`."), (404, NotFound),
            (409, "`resubmission_window_closed`, or the approval's state."), (423, "`lock_busy`.")),
        ["Withdraw"] = new("The submitting agent withdraws its request (final; `already_withdrawn` the second time).", typeof(WithdrawRequest), null,
            (403, "`not_the_submitter`."), (404, NotFound), (409, "Already decided (its state is the code)."), (423, "`lock_busy`.")),
        ["GetReceipt"] = new("The decision's receipt, signed with the tenant's ECDSA P-256 key: verify `payload` offline with the " +
            "public keys (`GET /api/v1/tenants/{tenant}/keys`).", null, null, (404, NotFound), (409, "`pending`: no decision to sign yet.")),
        ["GetPublicKeys"] = new("The tenant's receipt-signing public keys (SubjectPublicKeyInfo, base64), retired ones included so " +
            "old receipts still verify. Needs no credentials.", null, null, (404, NotFound)),
        ["RotateKey"] = new("Admin: a new signing key becomes current; the previous one is retired and stays published.", null, null, (404, NotFound)),
        ["RecordSideEffect"] = new("Records a side effect's result once per (approval, action): 201 the first time, 200 with the " +
            "first result after, so a retried executor never runs an action twice.", typeof(SideEffectRequest), null,
            (404, NotFound), (409, "Unless approved and matching: `job_changed`, `snapshot_changed`, or the approval's state.")),
        ["GetJob"] = new("A job's state and publication (`pending`, `dispatched`, `completed`, `failed`, `stuck`).", null, null, (404, NotFound)),
        ["JobResult"] = new("The agent reports a dispatched job's outcome (`completed` or `failed`), which stops its replay.", typeof(JobResultRequest), null,
            (404, NotFound), (409, "`not_dispatched`: the job is not dispatched.")),
        ["OpenCase"] = new("Opens a compliance case asking for documents (201; the same `idempotencyKey` answers the first case).", typeof(OpenCaseRequest)),
        ["SubmitCaseDocuments"] = new("The agent hands in the documents the case asks for; the case goes to review.", typeof(CaseDocumentsRequest), null,
            (404, NotFound), (409, "The case does not ask for documents now (its state is the code).")),
        ["DecideCase"] = new("A reviewer decides a case in review: `approve`, `reject`, `escalate` or `request_documents`.", typeof(CaseDecisionRequest), null,
            (403, "`not_an_approver`."), (404, NotFound), (409, "The case is not in review (its state is the code).")),
        ["PutTenantSettings"] = new("Admin: the tenant's approval TTL, approvers, dispatch sink, SLA, reminders, escalation, quorum, " +
            "resubmission and notification settings, and redaction (redactFields: payload paths masked for people; redactPatterns: " +
            "the tenant's {name, regex} secret patterns, 400 naming redactPatterns[i].regex when one does not compile).", typeof(TenantSettingsRequest), null, (404, NotFound)),
        ["CreateAgentKey"] = new("Admin: creates an agent key; its secret is in this answer only.", typeof(CreateAgentKeyRequest)),
        ["PublishPolicy"] = new("Admin: publishes a YAML policy (`Content-Type: application/yaml`) as the tenant's new current version; " +
            "a 400 names the line and column at fault.", typeof(string)),
        ["QueueStats"] = new("The tenant's queue: pending count, oldest age, approvals expiring within the hour, an age histogram.", null, null, (404, NotFound)),
        ["NotificationStatus"] = new("Notifications waiting for delivery and the latest failed attempts.", null, null, (404, NotFound)),
        ["Stats"] = new("Counters: `already_approved`, `snapshot_mismatch`, `job_mismatch`, `replayed_approved`, `dispatch_failures`.", null, null, (404, NotFound)),
        ["ListTenants"] = new("The tenants the caller can read."),
        ["GetTenantSettings"] = new("The tenant's settings (readers).", null, null, (404, NotFound)),
        ["ListAgentKeys"] = new("Admin: the tenant's agent keys (never their secrets).", null, null, (404, NotFound)),
        ["RevokeAgentKey"] = new("Admin: revokes an agent key at once; its open hub connections end.", null, null, (404, NotFound)),
        ["GetPolicy"] = new("The tenant's current policy (YAML) and its snapshot hash.", null, null, (404, NotFound)),
        ["GetPolicyHistory"] = new("Every published version of the tenant's policy, newest first.", null, null, (404, NotFound)),
        ["GetPolicyVersion"] = new("One published version of the policy, by its snapshot hash (what an approval was bound to).", null, null, (404, NotFound)),
        ["QueryAudit"] = new("The append-only, hash-chained audit history, filtered by tenant, approval, actor, action and time, paged with `after`.", null, null, (404, NotFound)),
        ["VerifyAudit"] = new("Admin: re-checks the tenant's keyed chain against its signed checkpoints: `rewritten` (first bad " +
            "sequence), `truncated`, and `checkpointLog` (`ok`, `unreachable` when the checkpoint store does not answer, " +
            "`tampered` when its log was replaced or lost checkpoints; `intact` is false unless `ok`).", null, null, (404, NotFound)),
        ["ListCases"] = new("A tenant's compliance cases, newest first.", null, null, (404, NotFound)),
        ["GetCase"] = new("The case: its state, iterations, deadlines and outcome.", null, null, (404, NotFound)),
        ["ExportTenant"] = new("Admin: the tenant's work in flight as NDJSON (`application/x-ndjson`, format `reviewerportal.inflight` " +
            "version 1, see `docs/schemas/inflight-export.v1.schema.json`), streamed: a header, the settings, every policy version, every " +
            "open approval and case with its timers, idempotency key and lineage, and a trailer with the counts. Secrets are left out " +
            "(named in the trailer) unless `includeSecrets=true`, which writes them decrypted. Audited (`tenant_exported`).", null, null,
            (404, NotFound)),
        ["ImportTenant"] = new("Admin: recreates an export (NDJSON body, at most `Migration:MaxImportBytes`) in this deployment with " +
            "the same ids, hashes, seqs and deadlines. Nothing is created twice; an item already decided here is left alone and listed " +
            "under `skipped`; a line that is not valid is listed under `errors` by its number and nothing of it is stored. Deadlines " +
            "that passed during the move fire at once. Audited per item and as a whole (`tenant_imported`).", typeof(string), null,
            (400, "`invalid_request`: a header of another format, version or tenant (`errors` names `format`, `version` or `tenant`): nothing was stored; or the body is over the limit."),
            (404, NotFound)) { BodyMediaType = "application/x-ndjson" },
        ["SlackInteractions"] = new("Slack's button clicks (`application/x-www-form-urlencoded`, `payload={json}` as Slack sends it), for the " +
            "Slack app's Interactivity Request URL. No bearer: the tenant named by the button's value (`{tenant}|{approvalId}|{jobHash}`) " +
            "must verify `X-Slack-Signature` (`v0=` + HMAC-SHA256 of `v0:{X-Slack-Request-Timestamp}:{body}` with its signing secret), " +
            "the timestamp within 5 minutes. The mapped account decides as in the portal (audited `via: slack`); the message is " +
            "updated at the click's `response_url`. 200 once verified, whatever the decision's outcome.", typeof(string), null,
            (401, "`invalid_signature`: unsigned, wrongly signed, older than 5 minutes, or for a tenant without Slack; nothing changed.")) { BodyMediaType = "application/x-www-form-urlencoded" },
        ["GetMyDelegation"] = new("Your out-of-office delegation (`delegation`, null when none) and the people away now who named you " +
            "(`decidingFor`): while they are away you decide what they could, audited as `for: <them>`."),
        ["SetMyDelegation"] = new("Away from `from` (default now) until `until`, `delegateTo` decides for you (another reviewer account; " +
            "replaces any delegation you had). Four eyes holds for both of you; delegations do not chain.", typeof(Features.Delegation.DelegationRequest),
            """{"delegateTo":"carol","from":"2026-12-20T00:00:00Z","until":"2027-01-04T09:00:00Z"}""",
            (400, Invalid), (403, "`not_a_reviewer`: accounts that decide nothing have nothing to delegate.")),
        ["EndMyDelegation"] = new("Ends your delegation: you are back (204 also when there was none)."),
        ["ListDelegations"] = new("Admin: every current and planned delegation (`active` when in force now)."),
        ["EndDelegation"] = new("Admin: ends an account's delegation at once (audited on the accounts stream).", null, null, (404, NotFound)),

        ["EditAndApprove"] = new("A reviewer edits the payload and approves the edited job in one step: a new version (version + 1, " +
            "new job id and hash, the earlier version in `lineage`), judged by the tenant's policy (a deny is a 403 and nothing changes), " +
            "audited with the field diff and `edited: true`. The agent's wait answers `approved` with `edited: true` and the payload to run. " +
            "A masked field sent back as \"[redacted:field]\" keeps its value. Under a quorum the edited version needs its votes afresh " +
            "(the editor's counts: `vote_recorded`).", typeof(EditAndApproveRequest),
            """{"payload":{"invoice":"INV-7","amount":400},"reason":"amount per contract","jobHash":"…"}""",
            (400, Invalid + " `payload.<path>` when the redaction marker stands where nothing was masked."),
            (403, "`not_an_approver`, `requester_may_not_approve` (audited), `policy_denied` (`ruleId`; audited)."), (404, NotFound),
            (409, "`job_changed`, `snapshot_changed`, or the approval's state: the edit was not applied."), (423, "`lock_busy`.")),
        ["ApproveAlways"] = new("Approve and add a standing approval: a published policy version with an `allow` rule carrying " +
            "`until` for the same topic, env (and channel) and the same values of the named payload `fields`, for `for` (at most the " +
            "tenant's `standingApprovalMax`, default and at most 24h). It only turns `require_human` into `allow`, never overrides a deny " +
            "or throttle, and stops counting at `until`.", typeof(ReviewerPortal.Features.Policies.ApproveAlwaysRequest),
            """{"reason":"recurring vendor run","for":"8h","fields":["payload.vendor"]}""",
            (400, Invalid + " `for` over the cap, `fields[i]` missing, masked or not a scalar."),
            (403, "`not_an_approver`, `requester_may_not_approve`, `standing_approval_needs_single_approver` (a quorum tenant)."), (404, NotFound),
            (409, "`job_changed`, `snapshot_changed`, `already_approved` or the approval's state: nothing was added."), (423, "`lock_busy`.")),
        ["ListStandingApprovals"] = new("The standing approvals in the tenant's current policy, with `until` and whether each still counts.", null, null, (404, NotFound)),
        ["RevokeStandingApproval"] = new("Admin: removes a standing approval by its rule id (a new policy version, audited).", null, null,
            (404, NotFound + " Or no standing approval of that id.")),
        ["Health"] = new("200 when Redis and the store answer; 503 naming `redis`, `sqlite` or `postgres` otherwise.", null, null,
            (503, "`unavailable`: `problem` names what is down.")),
    };

    private static (int, string)[] Decide() =>
    [
        (403, "`not_an_approver`: not an approver of the tenant at this escalation level; `requester_may_not_approve`: the person the agent acts for (audited)."),
        (404, NotFound),
        (409, "`job_changed` or `snapshot_changed`: the job or the policy drifted from what the reviewer saw; or the approval's state (`rejected`, `expired`, …)."),
        (423, "`lock_busy`: another decision holds the approval's lock; try again."),
    ];

    private sealed class DocumentTransformer : IOpenApiDocumentTransformer
    {
        public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
        {
            document.Info.Title = "ReviewerPortal API";
            document.Info.Description = "The approval control plane for automations and AI agents. Agents authenticate with an agent key, " +
                "people with an API token (both `Authorization: Bearer …`). Errors are RFC 7807 problem documents with a stable `code`.";
            document.Info.Contact = new OpenApiContact { Name = "ReviewerPortal" };
            foreach (var server in document.Servers ?? [])
            {
                server.Url = server.Url?.TrimEnd('/'); // spectral:oas (oas3-server-trailing-slash)
            }
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
            document.Components.SecuritySchemes[AgentKey] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "An agent key of the tenant (agents submit, wait, resubmit, withdraw).",
            };
            document.Components.SecuritySchemes[ApiToken] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http, Scheme = "bearer", Description = "A person's API token (reviewers, on-call, admins).",
            };
            document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>();
            document.Components.Schemas[Problem] = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "An RFC 7807 problem document with a stable machine-readable `code`.",
                Properties = new Dictionary<string, IOpenApiSchema>
                {
                    ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "`urn:reviewerportal:problem:<code>`." },
                    ["title"] = new OpenApiSchema { Type = JsonSchemaType.String },
                    ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer },
                    ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String },
                    ["code"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What went wrong, e.g. `job_changed`." },
                    ["errors"] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Description = "400: each field at fault and its messages.",
                        AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
                    },
                },
            };
            return Task.CompletedTask;
        }
    }

    private sealed class OperationTransformer : IOpenApiOperationTransformer
    {
        public async Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            var document = context.Document!;
            operation.Responses ??= new OpenApiResponses();
            if (!metadata.OfType<IAllowAnonymous>().Any() && metadata.OfType<IAuthorizeData>().Any())
            {
                var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).ToHashSet();
                List<string> schemes = policies.Contains(AuthSetup.AgentPolicy) ? [AgentKey]
                    : policies.Contains(AuthSetup.AccountPolicy) || policies.Contains(AuthSetup.AdminPolicy) ? [ApiToken]
                    : [AgentKey, ApiToken];
                operation.Security = [.. schemes.Select(s => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(s, document)] = [] })];
                AddProblem(operation, context.Document!, 401, "Missing, unknown or revoked key or token.");
                if (schemes.Count == 1 || policies.Contains(AuthSetup.AdminPolicy))
                {
                    AddProblem(operation, context.Document!, 403, "The caller's kind may not call this (an agent key where a person's token is needed, or the other way round; admin only).");
                }
            }
            if (operation.OperationId is not { } id || !Docs.TryGetValue(id, out var doc))
            {
                if (string.IsNullOrWhiteSpace(operation.Description))
                {
                    operation.Description = operation.Summary;
                }
                return;
            }
            operation.Description = doc.Description;
            if (doc.Body == typeof(string))
            {
                operation.RequestBody = new OpenApiRequestBody
                {
                    Required = true,
                    Content = new Dictionary<string, OpenApiMediaType> { [doc.BodyMediaType] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String } } },
                };
            }
            else if (doc.Body is { } body)
            {
                var media = new OpenApiMediaType { Schema = await context.GetOrCreateSchemaAsync(body, null, cancellationToken) };
                if (doc.Example is { } example)
                {
                    media.Example = JsonNode.Parse(example);
                }
                operation.RequestBody = new OpenApiRequestBody { Required = true, Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = media } };
            }
            if (operation.Responses.ContainsKey("400"))
            {
                AddProblem(operation, context.Document!, 400, Invalid);
            }
            foreach (var (status, text) in doc.Answers)
            {
                AddProblem(operation, context.Document!, status, text);
            }
            if (operation.Responses.ContainsKey("503") is false && id != "Health")
            {
                AddProblem(operation, context.Document!, 503, Unavailable);
            }
        }

        private static void AddProblem(OpenApiOperation operation, OpenApiDocument document, int status, string text)
        {
            var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (operation.Responses!.TryGetValue(key, out var existing) && existing is OpenApiResponse known)
            {
                known.Description = string.IsNullOrWhiteSpace(known.Description) || known.Description is "Bad Request" ? text : $"{known.Description} {text}";
                return;
            }
            operation.Responses[key] = new OpenApiResponse
            {
                Description = text,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(Problem, document) },
                },
            };
        }
    }
}
