using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Mvc;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Audit;
using ReviewerPortal.Features.Health;
using ReviewerPortal.Features.Policies;
using ReviewerPortal.Features.Tenants;

namespace ReviewerPortal.Infrastructure.Json;

/// <summary>Source-generated JSON for everything the API reads and writes. Unknown request fields are refused.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    UseStringEnumConverter = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    ReadCommentHandling = JsonCommentHandling.Disallow)]
[JsonSerializable(typeof(SubmitJobRequest))]
[JsonSerializable(typeof(Features.Auth.CreateAgentKeyRequest))]
[JsonSerializable(typeof(Features.Auth.CreatedAgentKey))]
[JsonSerializable(typeof(Features.Auth.AgentKeyList))]
[JsonSerializable(typeof(SubmitJobResponse))]
[JsonSerializable(typeof(DecideRequest))]
[JsonSerializable(typeof(ReevaluateRequest))]
[JsonSerializable(typeof(RequestChangesRequest))]
[JsonSerializable(typeof(ResubmitRequest))]
[JsonSerializable(typeof(WithdrawRequest))]
[JsonSerializable(typeof(EditAndApproveRequest))]
[JsonSerializable(typeof(ApproveAlwaysRequest))]
[JsonSerializable(typeof(ApproveAlwaysResponse))]
[JsonSerializable(typeof(StandingApprovalList))]
[JsonSerializable(typeof(DecisionResponse))]
[JsonSerializable(typeof(Features.Bulk.BulkDecideRequest))]
[JsonSerializable(typeof(Features.Bulk.BulkDecisionResponse))]
[JsonSerializable(typeof(Approval))]
[JsonSerializable(typeof(IReadOnlyList<Vote>))]
[JsonSerializable(typeof(IReadOnlyList<ApprovalVersion>))]
[JsonSerializable(typeof(Features.Notifications.Notification))]
[JsonSerializable(typeof(Features.Notifications.NotificationFailure))]
[JsonSerializable(typeof(Features.Notifications.NotificationStatus))]
[JsonSerializable(typeof(ApprovalListResponse))]
[JsonSerializable(typeof(QueueStats))]
[JsonSerializable(typeof(ApprovalChange))]
[JsonSerializable(typeof(AuditEntry))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(List<AuditEntry>))]
[JsonSerializable(typeof(AuditVerification))]
[JsonSerializable(typeof(TenantSettingsRequest))]
[JsonSerializable(typeof(TenantSettingsResponse))]
[JsonSerializable(typeof(WorkflowSettings))]
[JsonSerializable(typeof(Features.Redaction.RedactionSettings))]
[JsonSerializable(typeof(Features.Slack.SlackSettings))]
[JsonSerializable(typeof(Dictionary<string, string?>))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, long>))]
[JsonSerializable(typeof(TenantListResponse))]
[JsonSerializable(typeof(PolicyResponse))]
[JsonSerializable(typeof(PolicyPublishResponse))]
[JsonSerializable(typeof(PolicyHistoryResponse))]
[JsonSerializable(typeof(HealthReport))]
[JsonSerializable(typeof(Features.Observability.RuntimeFigures))]
[JsonSerializable(typeof(Features.Receipts.ApprovalReceipt))]
[JsonSerializable(typeof(Features.Receipts.PublicKeysResponse))]
[JsonSerializable(typeof(Features.Dispatch.JobResultRequest))]
[JsonSerializable(typeof(Features.Dispatch.JobResultResponse))]
[JsonSerializable(typeof(Features.Dispatch.SideEffectRequest))]
[JsonSerializable(typeof(Features.Dispatch.SideEffectResponse))]
[JsonSerializable(typeof(Features.Dispatch.StatsResponse))]
[JsonSerializable(typeof(Features.Mcp.ForwardRecord))]
[JsonSerializable(typeof(Features.Dispatch.JobStatusResponse))]
[JsonSerializable(typeof(Features.Cases.ComplianceCase))]
[JsonSerializable(typeof(Features.Cases.OpenCaseRequest))]
[JsonSerializable(typeof(Features.Cases.CaseDocumentsRequest))]
[JsonSerializable(typeof(Features.Cases.CaseDecisionRequest))]
[JsonSerializable(typeof(Features.Cases.CaseResponse))]
[JsonSerializable(typeof(Features.Cases.CaseListResponse))]
[JsonSerializable(typeof(Features.Delegation.Delegation))]
[JsonSerializable(typeof(Features.Delegation.DelegationRequest))]
[JsonSerializable(typeof(Features.Delegation.DelegationResponse))]
[JsonSerializable(typeof(Features.Delegation.MyDelegationResponse))]
[JsonSerializable(typeof(Features.Delegation.DelegationListResponse))]
[JsonSerializable(typeof(ProblemDetails))]
[JsonSerializable(typeof(HttpValidationProblemDetails))]
public sealed partial class AppJsonContext : JsonSerializerContext;
