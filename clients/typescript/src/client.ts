/** The ReviewerPortal client on Node's fetch: the same calls and typed errors as the Python client. */
import { ReceiptInvalid, Unreachable, errorFor, type Problem } from "./errors.js";
import { verifyReceipt } from "./receipts.js";
import type {
  Approval, ApprovalReceipt, CaseResponse, ComplianceCase, DecisionResponse, JobResultResponse, JobStatusResponse,
  JobSubmission, PublicKeysResponse, PublicSigningKey, ReceiptClaims, SideEffectResponse, SubmitJobResponse,
} from "./types.js";

export const VERSION = "0.1.0";
/** A long-poll asks for at most this many seconds (the server's limit). */
export const MAX_WAIT_SECONDS = 60;
const TRANSIENT = new Set([429, 502, 503, 504]);

export interface ClientOptions {
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Per-request timeout in milliseconds for calls other than the long-poll (default 30 s). */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** Give up after this many milliseconds … */
  timeoutMs?: number;
  /** … or at this moment (the earlier of both). */
  deadline?: Date;
  signal?: AbortSignal;
}

const seg = encodeURIComponent;

function retryAfterOf(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) ? seconds : undefined;
}

async function problemOf(response: Response): Promise<Problem> {
  try {
    const body = (await response.json()) as unknown;
    if (body && typeof body === "object" && !Array.isArray(body)) return body as Problem;
  } catch {
    // not JSON
  }
  return { title: response.statusText || `HTTP ${response.status}` };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

function deadlineOf(options: WaitOptions): number {
  let ends = Infinity;
  if (options.timeoutMs !== undefined) ends = Date.now() + Math.max(0, options.timeoutMs);
  if (options.deadline !== undefined) ends = Math.min(ends, options.deadline.getTime());
  if (ends === Infinity) throw new TypeError("give timeoutMs or deadline");
  return ends;
}

/** True while an approval waits for a human. */
export const isPending = (approval: Approval): boolean => approval.state === "pending";

/**
 * A client for an agent key or a person's API token.
 *
 * ```ts
 * const rp = new ReviewerPortalClient("http://localhost:5080", "demo-acme-agent");
 * const job = await rp.submit({ topic: "finance.payment.execute", env: "production", payload: { invoice: "INV-7" } });
 * const approval = await rp.wait(job.approvalId!, { timeoutMs: 3_600_000 });
 * ```
 */
export class ReviewerPortalClient {
  readonly baseUrl: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #keys = new Map<string, PublicSigningKey[]>();

  constructor(baseUrl: string, token: string, options: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.#token = token;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  async #send(method: string, path: string, body?: unknown, timeoutMs?: number, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(timeoutMs ?? this.#timeoutMs);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
      "user-agent": `reviewerportal-typescript/${VERSION}`,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    return this.#fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.#send(method, path, body);
    if (!response.ok) throw errorFor(response.status, await problemOf(response), retryAfterOf(response));
    return (await response.json()) as T;
  }

  // Agents ---------------------------------------------------------------------------------------------------------
  /** Submits a job: `allow` or `require_human` come back; deny throws PolicyDenied, throttle PolicyThrottled. */
  submit(job: JobSubmission): Promise<SubmitJobResponse> {
    return this.#call("POST", "/api/v1/jobs", job);
  }

  get(approvalId: string): Promise<Approval> {
    return this.#call("GET", `/api/v1/approvals/${seg(approvalId)}`);
  }

  /**
   * Waits until the approval leaves `pending` or the deadline passes, and returns it as it then is. Long-polls in
   * steps of at most 60 s; a dropped connection, a server restart or a 429/502/503/504 is ridden out with backoff
   * until the deadline. Throws Unreachable when the server never answered before it.
   */
  async wait(approvalId: string, options: WaitOptions): Promise<Approval> {
    const ends = deadlineOf(options);
    let delay = 200;
    let last: Approval | undefined;
    let failure: unknown;
    for (;;) {
      const seconds = Math.min(MAX_WAIT_SECONDS, Math.max(0, Math.ceil((ends - Date.now()) / 1000)));
      let pause: number | undefined;
      try {
        const response = await this.#send("GET", `/api/v1/approvals/${seg(approvalId)}/decision?waitSeconds=${seconds}`,
          undefined, (seconds + 15) * 1000, options.signal);
        if (TRANSIENT.has(response.status)) {
          const after = retryAfterOf(response);
          failure = errorFor(response.status, await problemOf(response), after);
          pause = after === undefined ? undefined : after * 1000;
        } else if (!response.ok) {
          throw errorFor(response.status, await problemOf(response), retryAfterOf(response));
        } else {
          last = (await response.json()) as Approval;
          failure = undefined;
          delay = 200;
          if (!isPending(last) || seconds === 0 || Date.now() >= ends) return last;
          continue;
        }
      } catch (error) {
        if (options.signal?.aborted) throw error;
        if (!(error instanceof TypeError) && !(error instanceof DOMException) && !isNetworkError(error)) throw error;
        failure = error; // fetch failed: connection refused or dropped, or our own per-request timeout
      }
      const left = ends - Date.now();
      if (left <= 0) {
        if (last) return last;
        throw new Unreachable(`no answer for ${approvalId} before the deadline: ${String(failure)}`, { cause: failure });
      }
      await sleep(Math.min(pause ?? delay, left), options.signal);
      delay = Math.min(delay * 2, 5000);
    }
  }

  /** After changes were requested: the amended payload as a new version (same key: `already_resubmitted`). */
  resubmit(approvalId: string, payload: unknown, idempotencyKey?: string): Promise<DecisionResponse> {
    return this.#call("POST", `/api/v1/approvals/${seg(approvalId)}/resubmit`, { payload, idempotencyKey });
  }

  withdraw(approvalId: string, reason?: string): Promise<DecisionResponse> {
    return this.#call("POST", `/api/v1/approvals/${seg(approvalId)}/withdraw`, { reason });
  }

  /** Stores `result` once per (approval, action); every later call returns the first result (`firstTime` false). */
  recordSideEffect(approvalId: string, actionId: string, result: unknown,
    bound: { jobHash?: string; policySnapshot?: string } = {}): Promise<SideEffectResponse> {
    return this.#call("POST", "/api/v1/side-effects", { approvalId, actionId, result, ...bound });
  }

  getJob(jobId: string): Promise<JobStatusResponse> {
    return this.#call("GET", `/api/v1/jobs/${seg(jobId)}`);
  }

  /** `completed` or `failed`: stops the replay of a dispatched job. */
  reportResult(jobId: string, status: "completed" | "failed", detail?: string): Promise<JobResultResponse> {
    return this.#call("POST", `/api/v1/jobs/${seg(jobId)}/result`, { status, detail });
  }

  // Reviewers ------------------------------------------------------------------------------------------------------
  /** Idempotent (`already_approved`); a stale hash or snapshot throws JobChanged / SnapshotChanged. */
  approve(approvalId: string, reason?: string, bound: { jobHash?: string; policySnapshot?: string } = {}): Promise<DecisionResponse> {
    return this.#call("POST", `/api/v1/approvals/${seg(approvalId)}/approve`, { reason, ...bound });
  }

  reject(approvalId: string, reason?: string, bound: { jobHash?: string; policySnapshot?: string } = {}): Promise<DecisionResponse> {
    return this.#call("POST", `/api/v1/approvals/${seg(approvalId)}/reject`, { reason, ...bound });
  }

  requestChanges(approvalId: string, reason: string): Promise<DecisionResponse> {
    return this.#call("POST", `/api/v1/approvals/${seg(approvalId)}/request-changes`, { reason });
  }

  // Cases ----------------------------------------------------------------------------------------------------------
  /** Opens a compliance case asking for `documents`; `window` and `documentDeadline` are ISO 8601 durations. */
  async openCase(subject: string, documents: string[], options: { maxIterations?: number; window?: string;
    documentDeadline?: string; idempotencyKey?: string } = {}): Promise<ComplianceCase> {
    return (await this.#call<CaseResponse>("POST", "/api/v1/cases", { subject, documents, ...options })).case;
  }

  async submitDocuments(caseId: string, documents: Record<string, unknown>, note?: string): Promise<ComplianceCase> {
    return (await this.#call<CaseResponse>("POST", `/api/v1/cases/${seg(caseId)}/documents`, { documents, note })).case;
  }

  async decideCase(caseId: string, decision: "approve" | "reject" | "escalate" | "request_documents", reason?: string,
    documents?: string[]): Promise<ComplianceCase> {
    return (await this.#call<CaseResponse>("POST", `/api/v1/cases/${seg(caseId)}/decision`, { decision, reason, documents })).case;
  }

  async getCase(caseId: string): Promise<ComplianceCase> {
    const body = await this.#call<ComplianceCase | CaseResponse>("GET", `/api/v1/cases/${seg(caseId)}`);
    return "case" in body ? body.case : body;
  }

  // Receipts -------------------------------------------------------------------------------------------------------
  /** The signed receipt of a decided approval (ReceiptPending while pending). */
  getReceipt(approvalId: string): Promise<ApprovalReceipt> {
    return this.#call("GET", `/api/v1/approvals/${seg(approvalId)}/receipt`);
  }

  /** The tenant's receipt-signing keys, cached; `refresh` fetches them again. */
  async publicKeys(tenant: string, refresh = false): Promise<PublicSigningKey[]> {
    let keys = this.#keys.get(tenant);
    if (refresh || !keys) {
      keys = (await this.#call<PublicKeysResponse>("GET", `/api/v1/tenants/${seg(tenant)}/keys`)).keys;
      this.#keys.set(tenant, keys);
    }
    return keys;
  }

  /** Verifies offline with the cached keys (fetched again once when the receipt names a key not seen yet). */
  async verifyReceipt(receipt: ApprovalReceipt, jobHash: string, now?: Date): Promise<ReceiptClaims> {
    let tenant: string;
    try {
      tenant = String((JSON.parse(receipt.payload) as { tenant: unknown }).tenant);
    } catch {
      throw new ReceiptInvalid("malformed payload");
    }
    let keys = await this.publicKeys(tenant);
    if (!keys.some((k) => k.kid === receipt.kid)) keys = await this.publicKeys(tenant, true);
    return verifyReceipt(receipt, keys, jobHash, now);
  }
}

function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ?? (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|UND_ERR_)/.test(code);
}
