/** Request and response types of the API, generated from /openapi/v1.json (src/generated/api.ts). */
import type { components, operations } from "./generated/api.js";

type Schemas = components["schemas"];

export type Approval = Schemas["Approval"];
export type SubmitJobResponse = Schemas["SubmitJobResponse"];
export type DecisionResponse = Schemas["DecisionResponse"];
export type ApprovalReceipt = Schemas["ApprovalReceipt"];
export type PublicSigningKey = Schemas["PublicSigningKey"];
export type PublicKeysResponse = Schemas["PublicKeysResponse"];
export type SideEffectResponse = Schemas["SideEffectResponse"];
export type ComplianceCase = Schemas["ComplianceCase"];
export type CaseResponse = Schemas["CaseResponse"];
export type JobStatusResponse = Schemas["JobStatusResponse"];
export type JobResultResponse = Schemas["JobResultResponse"];
export type ApprovalListResponse = Schemas["ApprovalListResponse"];
export type { components, operations, paths } from "./generated/api.js";

/** Any JSON value (a job's payload, a side effect's result). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What an agent asks to run (`POST /api/v1/jobs`). */
export interface JobSubmission {
  topic: string;
  env: string;
  payload: unknown;
  channel?: string;
  priority?: string;
  /** The same key answers the first submission again (`replayed`): a retry attaches to the same approval. */
  idempotencyKey?: string;
  /** The person the agent acts for (separation of duties keeps them from approving). */
  requestedBy?: string;
}

/** What a verified receipt states. */
export interface ReceiptClaims {
  approvalId: string;
  tenant: string;
  jobId: string;
  jobHash: string;
  policySnapshot: string;
  decision: string;
  deciders: string[];
  decidedAt: string;
  issuedAt: string;
  expiresAt: string;
  kid: string;
}

/** The operations the client calls, checked against the generated document at compile time. */
export type OperationId = keyof operations;

type JsonBody<Op extends keyof operations> = operations[Op] extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;

/** Request bodies as the document describes them. */
export type SubmitJobRequest = JsonBody<"SubmitJob">;
export type DecideRequest = JsonBody<"Approve">;
export type ResubmitRequest = JsonBody<"Resubmit">;
export type WithdrawRequest = JsonBody<"Withdraw">;
export type RequestChangesRequest = JsonBody<"RequestChanges">;
export type SideEffectRequest = JsonBody<"RecordSideEffect">;
export type OpenCaseRequest = JsonBody<"OpenCase">;
export type CaseDocumentsRequest = JsonBody<"SubmitCaseDocuments">;
export type CaseDecisionRequest = JsonBody<"DecideCase">;
export type JobResultRequest = JsonBody<"JobResult">;

// What the client sends must fit what the document accepts: a renamed, removed or retyped field breaks this build.
type Assert<T extends true> = T;
type Fits<A, B extends A> = [Exclude<keyof B, keyof A>] extends [never] ? true : false;
type DecideBody = { reason?: string; jobHash?: string; policySnapshot?: string };
type SideEffectBody = { approvalId: string; actionId: string; result: unknown; jobHash?: string; policySnapshot?: string };
export type _SubmitFits = Assert<Fits<SubmitJobRequest, JobSubmission>>;
export type _DecideFits = Assert<Fits<DecideRequest, DecideBody>>;
export type _ResubmitFits = Assert<Fits<ResubmitRequest, { payload: unknown; idempotencyKey?: string }>>;
export type _WithdrawFits = Assert<Fits<WithdrawRequest, { reason?: string }>>;
export type _SideEffectFits = Assert<Fits<SideEffectRequest, SideEffectBody>>;
export type _CaseDecisionFits = Assert<Fits<CaseDecisionRequest, { decision: string; reason?: string; documents?: string[] }>>;
