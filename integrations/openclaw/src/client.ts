// The clawea decision API client: POST /v1/decide and
// POST /v1/decide/{id}/result (docs/decide.md). Every failure is turned
// into a ClaweaError with a stable code; the policy blocks on any of them.

export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Stable codes of the plugin's own failures (the answer's codes pass through). */
export const Codes = {
  /** No job token: CLAWEA_TOKEN is not set in OpenClaw's environment. */
  noToken: "CLAWEA_NO_TOKEN",
  /** The plugin's config is missing or invalid. */
  badConfig: "CLAWEA_BAD_CONFIG",
  /** clawea could not be reached (connection refused, DNS, reset, TLS). */
  unreachable: "CLAWEA_UNREACHABLE",
  /** clawea did not answer within decideTimeoutMs. */
  timeout: "CLAWEA_TIMEOUT",
  /** clawea answered something that is not a decision. */
  badAnswer: "CLAWEA_BAD_ANSWER",
  /** clawea answered an HTTP error without a readable error code. */
  httpError: "CLAWEA_HTTP_ERROR",
  /** The approval was not decided within approvalWaitMs. */
  approvalWait: "CLAWEA_APPROVAL_WAIT_EXPIRED",
  /** The tool call was cancelled by OpenClaw while it waited. */
  cancelled: "CLAWEA_CANCELLED",
  /** The run is on an OpenClaw runtime the plugin cannot cover. */
  uncovered: "CLAWEA_RUNTIME_UNCOVERED",
  /** OpenClaw's config does not enable or allow the plugin: its policy will not run. */
  notAllowed: "CLAWEA_PLUGIN_NOT_ALLOWED",
  /** The plugin itself failed (a bug): fail closed. */
  internal: "CLAWEA_PLUGIN_ERROR",
} as const;

export class ClaweaError extends Error {
  code: string;
  status: number;
  constructor(code: string, message: string, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export type DecideRequest = {
  tool: { runtime: string; name: string; kind?: string };
  params: Record<string, unknown>;
  correlation?: {
    run_id?: string;
    tool_call_id?: string;
    session_key?: string;
    agent_id?: string;
    trace?: { traceparent: string; tracestate?: string };
  };
  facts?: {
    sandboxed?: boolean;
    elevated?: boolean;
    requester?: { channel?: string; account_id?: string; sender_id?: string; sender_is_owner?: boolean };
  };
};

export type Decision =
  | { decision: "allow"; decisionId: string; statements: string[]; approvalId?: string }
  | { decision: "deny"; code: string; message: string; statements: string[]; receiptId?: string; approvalId?: string }
  | { decision: "needs_approval"; code: string; message: string; statements: string[]; approvalId: string };

export type ResultRequest =
  | { status: "success"; result: unknown }
  | { status: "error" | "timeout"; error_code?: string; error_message?: string; result?: unknown };

const codeRe = /^[A-Z][A-Z0-9_]{0,63}$/;
const idRe = /^[\x21-\x7e]{1,256}$/;
const maxAnswer = 1 << 20;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function strings(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 256) return undefined;
  const out: string[] = [];
  for (const s of v) {
    if (typeof s !== "string" || s.length > 256) return undefined;
    out.push(s);
  }
  return out;
}

function optionalId(v: unknown): string | undefined | null {
  if (v === undefined || v === null || v === "") return undefined;
  return typeof v === "string" && idRe.test(v) ? v : null;
}

function text(v: unknown): string {
  return typeof v === "string" ? v.slice(0, 1024) : "";
}

/**
 * parseDecision reads a 200 answer of POST /v1/decide. Anything but a
 * well-formed allow, deny or needs_approval throws CLAWEA_BAD_ANSWER.
 */
export function parseDecision(raw: string): Decision {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new ClaweaError(Codes.badAnswer, "the answer is not JSON");
  }
  if (!isObject(v)) throw new ClaweaError(Codes.badAnswer, "the answer is not a JSON object");
  const statements = strings(v.statements);
  if (statements === undefined) throw new ClaweaError(Codes.badAnswer, "statements is not a list of strings");
  const approvalId = optionalId(v.approval_id);
  if (approvalId === null) throw new ClaweaError(Codes.badAnswer, "approval_id is not an id");
  switch (v.decision) {
    case "allow": {
      const id = optionalId(v.decision_id);
      if (!id) throw new ClaweaError(Codes.badAnswer, "an allow without a decision_id");
      return { decision: "allow", decisionId: id, statements, ...(approvalId ? { approvalId } : {}) };
    }
    case "deny": {
      if (typeof v.code !== "string" || !codeRe.test(v.code)) throw new ClaweaError(Codes.badAnswer, "a deny without a code");
      const receiptId = optionalId(v.receipt_id);
      if (receiptId === null) throw new ClaweaError(Codes.badAnswer, "receipt_id is not an id");
      return {
        decision: "deny", code: v.code, message: text(v.message), statements,
        ...(receiptId ? { receiptId } : {}), ...(approvalId ? { approvalId } : {}),
      };
    }
    case "needs_approval": {
      if (typeof v.code !== "string" || !codeRe.test(v.code)) throw new ClaweaError(Codes.badAnswer, "a needs_approval without a code");
      if (!approvalId) throw new ClaweaError(Codes.badAnswer, "a needs_approval without an approval_id");
      return { decision: "needs_approval", code: v.code, message: text(v.message), statements, approvalId };
    }
    default:
      throw new ClaweaError(Codes.badAnswer, "unknown decision " + JSON.stringify(String(v.decision)).slice(0, 40));
  }
}

/** errorOf turns a non-2xx answer into a ClaweaError with clawea's code when readable. */
function errorOf(status: number, raw: string): ClaweaError {
  try {
    const v: unknown = JSON.parse(raw);
    if (isObject(v) && isObject(v.error) && typeof v.error.code === "string" && codeRe.test(v.error.code)) {
      return new ClaweaError(v.error.code, text(v.error.message) || `HTTP ${status}`, status);
    }
  } catch {
    // fall through
  }
  return new ClaweaError(Codes.httpError, `HTTP ${status}`, status);
}

export type ClientOptions = {
  server: string;
  token: () => string | undefined;
  timeoutMs: number;
  fetch?: FetchFn;
};

export class Client {
  server: string;
  token: () => string | undefined;
  timeoutMs: number;
  fetchFn: FetchFn;

  constructor(o: ClientOptions) {
    this.server = o.server.replace(/\/+$/, "");
    this.token = o.token;
    this.timeoutMs = o.timeoutMs;
    this.fetchFn = o.fetch ?? ((input, init) => fetch(input, init));
  }

  /** post sends body and returns the answer's status and text (bounded). */
  async post(path: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; raw: string }> {
    const token = this.token();
    if (!token) throw new ClaweaError(Codes.noToken, "no job token (set CLAWEA_TOKEN in OpenClaw's environment)");
    let payload: string;
    try {
      payload = JSON.stringify(body);
    } catch (e) {
      throw new ClaweaError(Codes.internal, "the request cannot be encoded: " + String(e));
    }
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const sig = signal ? AbortSignal.any([timeout, signal]) : timeout;
    let res: Response;
    let raw: string;
    try {
      res = await this.fetchFn(this.server + path, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer " + token, accept: "application/json" },
        body: payload,
        signal: sig,
        redirect: "error",
      });
      raw = await readBounded(res, maxAnswer);
    } catch (e) {
      if (signal?.aborted) throw new ClaweaError(Codes.cancelled, "the tool call was cancelled");
      if (timeout.aborted) throw new ClaweaError(Codes.timeout, `no answer within ${this.timeoutMs} ms`);
      if (e instanceof ClaweaError) throw e;
      throw new ClaweaError(Codes.unreachable, describe(e));
    }
    return { status: res.status, raw };
  }

  /** decide asks POST /v1/decide. */
  async decide(req: DecideRequest, signal?: AbortSignal): Promise<Decision> {
    const { status, raw } = await this.post("/v1/decide", req, signal);
    if (status !== 200) throw errorOf(status, raw);
    return parseDecision(raw);
  }

  /** result closes a decision: POST /v1/decide/{id}/result; returns the receipt id. */
  async result(decisionId: string, req: ResultRequest, signal?: AbortSignal): Promise<string> {
    const { status, raw } = await this.post("/v1/decide/" + encodeURIComponent(decisionId) + "/result", req, signal);
    if (status !== 200) throw errorOf(status, raw);
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new ClaweaError(Codes.badAnswer, "the answer is not JSON");
    }
    if (!isObject(v) || typeof v.receipt_id !== "string" || !v.receipt_id) {
      throw new ClaweaError(Codes.badAnswer, "the answer has no receipt_id");
    }
    return v.receipt_id;
  }
}

/** appendEvent appends an event to the job's chain (POST /v1/jobs/{id}/events, scope job:events). */
export async function appendEvent(c: Client, jobId: string, eventType: string, payload: unknown): Promise<void> {
  const { status, raw } = await c.post("/v1/jobs/" + encodeURIComponent(jobId) + "/events", { event_type: eventType, payload });
  if (status !== 201 && status !== 200) throw errorOf(status, raw);
}

async function readBounded(res: Response, max: number): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => {});
      throw new ClaweaError(Codes.badAnswer, `the answer is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    const c = cause instanceof Error ? ((cause as Error & { code?: string }).code ?? cause.message) : "";
    return (e.message + (c ? ` (${c})` : "")).slice(0, 300);
  }
  return String(e).slice(0, 300);
}
