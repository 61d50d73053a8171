// The trusted tool policy: every tool call OpenClaw runs through its
// before-tool-call pipeline is decided by clawea (POST /v1/decide), and
// closed with its outcome after it ran (POST /v1/decide/{id}/result).

import { appendEvent, Client, ClaweaError, Codes, type DecideRequest, type Decision, type ResultRequest } from "./client.ts";
import { Witness, type RuntimePin } from "./coverage.ts";

export type Logger = {
  info?: (msg: string) => void;
  warn?: (msg: string) => void;
  error?: (msg: string) => void;
};

/** The parts of OpenClaw's before_tool_call event the policy reads. */
export type ToolEvent = {
  toolName: string;
  params?: Record<string, unknown>;
  toolKind?: string;
  toolInputKind?: string;
  runId?: string;
  toolCallId?: string;
};

export type ToolContext = {
  agentId?: string;
  sessionKey?: string;
  sessionId?: string;
  runId?: string;
  toolKind?: string;
  toolInputKind?: string;
  toolCallId?: string;
  abortSignal?: AbortSignal;
  trace?: { traceId?: string; spanId?: string; traceFlags?: string };
  requester?: { channel?: string; accountId?: string; senderId?: string; senderIsOwner?: boolean };
};

export type AfterEvent = {
  toolName: string;
  params?: Record<string, unknown>;
  runId?: string;
  toolCallId?: string;
  result?: unknown;
  error?: string;
  durationMs?: number;
};

export type PolicyResult = { block: true; blockReason: string } | undefined;

export type PolicyOptions = {
  client: Client;
  jobId: string;
  /** block: a run on an uncovered runtime gets its decided tools blocked; warn: only logged and recorded. */
  uncoveredRuntime: "block" | "warn";
  /** Runtime selections of the OpenClaw config that the policy cannot cover (scanConfig). */
  uncoveredPins?: RuntimePin[];
  approvalWaitMs: number;
  pollIntervalMs: number;
  mcpServer: string;
  logger?: Logger;
  /** Facts the host claims for every call (sandbox mode), merged into the request. */
  sandboxed?: (ctx: ToolContext) => boolean | undefined;
  /** Instances with the same key share their open decisions and witness (see Shared). */
  stateKey?: string;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
};

const nameRe = /^[A-Za-z0-9_.-]{1,128}$/;
const kindRe = /^[A-Za-z0-9_.-]{1,64}$/;
const maxOpen = 4096;
const openTTL = 30 * 60_000;
const maxResultBytes = 512 * 1024;

function sleepAbortable(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new ClaweaError(Codes.cancelled, "the tool call was cancelled"));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new ClaweaError(Codes.cancelled, "the tool call was cancelled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A correlation id clawea accepts: text of at most 256 bytes without control characters. */
function corrId(v: unknown): string | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  if (Buffer.byteLength(v) > 256 || /[\u0000-\u001f\u007f]/.test(v)) return undefined;
  return v;
}

function traceparent(t: ToolContext["trace"]): string | undefined {
  if (!t || typeof t.traceId !== "string" || typeof t.spanId !== "string") return undefined;
  const flags = typeof t.traceFlags === "string" && /^[0-9a-f]{2}$/.test(t.traceFlags) ? t.traceFlags : "01";
  if (!/^[0-9a-f]{32}$/.test(t.traceId) || /^0+$/.test(t.traceId)) return undefined;
  if (!/^[0-9a-f]{16}$/.test(t.spanId) || /^0+$/.test(t.spanId)) return undefined;
  return `00-${t.traceId}-${t.spanId}-${flags}`;
}

/** blockReason formats what the agent and the operator read for a blocked call. */
export function blockReason(tool: string, e: { code: string; message: string; statements?: string[]; approvalId?: string }, denied: boolean): string {
  const st = e.statements && e.statements.length > 0 ? ` (statements ${e.statements.join(", ")})` : "";
  const ap = e.approvalId ? ` [approval ${e.approvalId}]` : "";
  const msg = e.message ? `: ${e.message}` : "";
  return denied ? `clawea denied ${tool}: ${e.code}${st}${ap}${msg}` : `clawea: ${e.code} — ${tool} blocked${st}${ap}${msg}`;
}

type Open = { decisionId: string; tool: string; at: number };

/**
 * OpenClaw may load the plugin more than once in a process (one registry
 * per activation or request scope, each evaluating the module again) and
 * call before and after hooks on different instances: the open decisions
 * and the witness are shared per clawea server and job, process-wide.
 */
type Shared = { open: Map<string, Open>; witness: Witness };
// On globalThis: OpenClaw may also evaluate this module more than once.
const sharedStates: Map<string, Shared> = ((globalThis as Record<symbol, unknown>)[Symbol.for("clawea.openclaw-plugin.state")] ??= new Map()) as Map<string, Shared>;

function sharedState(key: string | undefined): Shared {
  if (key === undefined) return { open: new Map(), witness: new Witness() };
  let s = sharedStates.get(key);
  if (!s) {
    s = { open: new Map(), witness: new Witness() };
    sharedStates.set(key, s);
  }
  return s;
}

export class ClaweaPolicy {
  o: PolicyOptions;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Allowed decisions waiting for after_tool_call, by toolCallId. */
  open: Map<string, Open>;
  witness: Witness;

  constructor(o: PolicyOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? sleepAbortable;
    const st = sharedState(o.stateKey);
    this.open = st.open;
    this.witness = st.witness;
  }

  /** passThrough reports the tools clawea's own MCP server serves (decided by clawea's tool gateway). */
  passThrough(tool: string): boolean {
    return this.o.mcpServer !== "" && tool.toLowerCase().startsWith(this.o.mcpServer + "__");
  }

  request(event: ToolEvent, ctx: ToolContext): DecideRequest {
    const kindRaw = event.toolKind ?? ctx.toolKind ?? event.toolInputKind ?? ctx.toolInputKind;
    const req: DecideRequest = {
      tool: { runtime: "openclaw", name: event.toolName, ...(typeof kindRaw === "string" && kindRe.test(kindRaw) ? { kind: kindRaw } : {}) },
      params: event.params && typeof event.params === "object" && !Array.isArray(event.params) ? event.params : {},
    };
    const corr: NonNullable<DecideRequest["correlation"]> = {};
    const runId = corrId(event.runId ?? ctx.runId);
    if (runId) corr.run_id = runId;
    const callId = corrId(event.toolCallId ?? ctx.toolCallId);
    if (callId) corr.tool_call_id = callId;
    const sk = corrId(ctx.sessionKey);
    if (sk) corr.session_key = sk;
    const agent = corrId(ctx.agentId);
    if (agent) corr.agent_id = agent;
    const tp = traceparent(ctx.trace);
    if (tp) corr.trace = { traceparent: tp };
    if (Object.keys(corr).length > 0) req.correlation = corr;
    const facts: NonNullable<DecideRequest["facts"]> = {};
    const sandboxed = this.o.sandboxed?.(ctx);
    if (typeof sandboxed === "boolean") facts.sandboxed = sandboxed;
    const elevated = req.params.elevated;
    if (event.toolName === "exec" && typeof elevated === "boolean") facts.elevated = elevated;
    const r = ctx.requester;
    if (r && typeof r === "object") {
      const rq: NonNullable<NonNullable<DecideRequest["facts"]>["requester"]> = {};
      const ch = corrId(r.channel);
      if (ch && ch.length <= 64) rq.channel = ch;
      const acc = corrId(r.accountId);
      if (acc) rq.account_id = acc;
      const snd = corrId(r.senderId);
      if (snd) rq.sender_id = snd;
      if (typeof r.senderIsOwner === "boolean") rq.sender_is_owner = r.senderIsOwner;
      if (Object.keys(rq).length > 0) facts.requester = rq;
    }
    if (Object.keys(facts).length > 0) req.facts = facts;
    return req;
  }

  /**
   * evaluate is the trusted tool policy's evaluate(): undefined lets the
   * call through (clawea allowed it), anything else blocks it. It never
   * throws: every failure is a block with a stable code.
   */
  async evaluate(event: ToolEvent, ctx: ToolContext): Promise<PolicyResult> {
    const tool = typeof event?.toolName === "string" ? event.toolName : "";
    try {
      this.witness.saw(callKey(event, ctx));
      if (!tool) throw new ClaweaError(Codes.badAnswer, "a tool call without a name");
      this.checkCoverage(ctx);
      if (this.passThrough(tool)) return undefined;
      if (!nameRe.test(tool)) {
        // clawea would refuse the name (INVALID_REQUEST): say so here.
        throw new ClaweaError("INVALID_REQUEST", "the tool's name is outside clawea's alphabet (A-Z a-z 0-9 _ - .)");
      }
      // A session spawned on another runtime (ACP harnesses) runs its
      // tools in another process, never decided here.
      const spawnRuntime = (event?.params as Record<string, unknown> | undefined)?.runtime;
      if (tool.toLowerCase() === "sessions_spawn" && spawnRuntime !== undefined && spawnRuntime !== "subagent") {
        throw new ClaweaError(Codes.uncovered, `sessions_spawn on runtime ${JSON.stringify(spawnRuntime)}: its tools would run where the clawea tool policy does not`);
      }
      const req = this.request(event, ctx);
      const signal = ctx?.abortSignal;
      let d: Decision = await this.o.client.decide(req, signal);
      if (d.decision === "needs_approval") d = await this.waitApproval(tool, req, d, signal);
      if (d.decision === "deny") {
        return { block: true, blockReason: blockReason(tool, d, true) };
      }
      if (d.decision !== "allow") throw new ClaweaError(Codes.badAnswer, "no decision");
      const key = callKey(event, ctx);
      if (key) this.remember(key, { decisionId: d.decisionId, tool, at: this.now() });
      else this.o.logger?.warn?.(`clawea: ${tool} allowed (decision ${d.decisionId}) without a toolCallId: its result cannot be recorded`);
      return undefined;
    } catch (e) {
      const ce = e instanceof ClaweaError ? e : new ClaweaError(Codes.internal, String(e));
      const reason = blockReason(tool || "tool", { code: ce.code, message: ce.message }, false);
      this.o.logger?.warn?.(reason);
      return { block: true, blockReason: reason };
    }
  }

  /** checkCoverage blocks (mode block) when the run cannot be fully decided. */
  checkCoverage(ctx: ToolContext): void {
    if (this.o.uncoveredRuntime !== "block") return;
    const pins = this.o.uncoveredPins ?? [];
    if (pins.length > 0) {
      const list = pins.map((p) => `${p.id} at ${p.path}`).join(", ");
      throw new ClaweaError(Codes.uncovered, `OpenClaw's config selects agent runtimes whose tools clawea cannot decide (${list}); remove them or set plugins.entries.clawea.config.uncoveredRuntime to "warn"`);
    }
    const scope = typeof ctx?.sessionKey === "string" && ctx.sessionKey ? ctx.sessionKey : "*";
    if (this.witness.isTainted(scope)) {
      throw new ClaweaError(Codes.uncovered, "a tool ran in this session without a clawea decision (a runtime path the plugin does not cover); start a new session on a covered runtime");
    }
  }

  /**
   * undecided reports a tool that ran without a clawea decision: logged,
   * recorded in the job's chain as an openclaw_undecided_tool_call event,
   * and (mode block) the session's later calls are blocked.
   */
  async undecided(event: AfterEvent, ctx: ToolContext, key: string, harness?: string): Promise<void> {
    const scope = typeof ctx?.sessionKey === "string" && ctx.sessionKey ? ctx.sessionKey : "*";
    if (this.o.uncoveredRuntime === "block") this.witness.taint(scope);
    const what = `clawea: ${Codes.uncovered} — ${event.toolName} ran without a clawea decision (toolCallId ${key}); the run is on a path the plugin does not cover`;
    this.o.logger?.error?.(what);
    const payload = {
      runtime: "openclaw",
      ...(typeof harness === "string" && /^[a-z0-9_-]{1,32}$/.test(harness) ? { harness } : {}),
      tool: String(event.toolName).slice(0, 128),
      ...(corrId(key) ? { tool_call_id: corrId(key) } : {}),
      ...(corrId(event.runId ?? ctx?.runId) ? { run_id: corrId(event.runId ?? ctx?.runId) } : {}),
      ...(corrId(ctx?.sessionKey) ? { session_key: corrId(ctx?.sessionKey) } : {}),
      ...(corrId(ctx?.agentId) ? { agent_id: corrId(ctx?.agentId) } : {}),
      mode: this.o.uncoveredRuntime,
    };
    try {
      await appendEvent(this.o.client, this.o.jobId, "openclaw_undecided_tool_call", payload);
    } catch (e) {
      const ce = e instanceof ClaweaError ? e : new ClaweaError(Codes.internal, String(e));
      this.o.logger?.error?.(`clawea: the undecided call of ${event.toolName} was not recorded: ${ce.code}: ${ce.message}`);
    }
  }

  /**
   * waitApproval asks again, every pollIntervalMs, until clawea allows or
   * denies the call or approvalWaitMs has passed. The same request after
   * `clawea approve allow` is allowed once (docs/decide.md).
   */
  async waitApproval(tool: string, req: DecideRequest, first: Decision & { decision: "needs_approval" }, signal?: AbortSignal): Promise<Decision> {
    const deadline = this.now() + this.o.approvalWaitMs;
    let d: Decision = first;
    this.o.logger?.warn?.(
      `clawea: ${tool} needs approval ${first.approvalId} (${first.code}); waiting up to ${Math.round(this.o.approvalWaitMs / 1000)} s: clawea approve allow ${first.approvalId} --key APPROVER.key.json`,
    );
    while (d.decision === "needs_approval") {
      const left = deadline - this.now();
      if (left <= 0) {
        throw new ClaweaError(Codes.approvalWait, `approval ${d.approvalId} was not decided within ${this.o.approvalWaitMs} ms; approve it (clawea approve allow ${d.approvalId}) and call again`);
      }
      await this.sleep(Math.min(this.o.pollIntervalMs, left), signal);
      d = await this.o.client.decide(req, signal);
    }
    return d;
  }

  remember(key: string, o: Open): void {
    if (this.open.size >= maxOpen) {
      const cutoff = this.now() - openTTL;
      for (const [k, v] of this.open) if (v.at < cutoff) this.open.delete(k);
      while (this.open.size >= maxOpen) {
        const oldest = this.open.keys().next().value;
        if (oldest === undefined) break;
        this.open.delete(oldest);
      }
    }
    this.open.set(key, o);
  }

  /** afterToolCall (OpenClaw's after_tool_call hook) closes the call's decision. */
  async afterToolCall(event: AfterEvent, ctx: ToolContext): Promise<void> {
    const error = typeof event?.error === "string" && event.error !== "" ? event.error : undefined;
    await this.close(event, ctx, error, event?.result);
  }

  /**
   * toolResult (OpenClaw's agent tool-result middleware, awaited before
   * the result reaches the model) closes the call's decision. It never
   * throws (a throwing middleware replaces the tool's result) and never
   * changes the result.
   */
  async toolResult(event: MiddlewareEvent, ctx: MiddlewareContext): Promise<void> {
    try {
      const error = event?.isError === true ? resultText(event.result) || "tool error" : undefined;
      const ev: AfterEvent = { toolName: event?.toolName, toolCallId: event?.toolCallId, ...(ctx?.runId ? { runId: ctx.runId } : {}) };
      const tctx: ToolContext = {
        ...(ctx?.agentId ? { agentId: ctx.agentId } : {}),
        ...(ctx?.sessionKey ? { sessionKey: ctx.sessionKey } : {}),
        ...(ctx?.runId ? { runId: ctx.runId } : {}),
      };
      await this.close(ev, tctx, error, event?.result, ctx?.runtime);
    } catch (e) {
      this.o.logger?.error?.(`clawea: ${Codes.internal}: tool result middleware: ${String(e)}`);
    }
  }

  /**
   * close posts the outcome of an allowed call once (the first of the
   * middleware and after_tool_call to see it), or reports a call that ran
   * without a decision.
   */
  async close(event: AfterEvent, ctx: ToolContext, error: string | undefined, result: unknown, harness?: string): Promise<void> {
    const key = callKey(event, ctx);
    if (!key) return;
    const o = this.open.get(key);
    if (!o) {
      // A call the policy never saw that succeeded ran on a path without
      // the trusted policy. (A failed one may have been blocked before the
      // policy ran, by a bundled policy: not reported.)
      const tool = typeof event?.toolName === "string" ? event.toolName : "";
      if (!this.witness.decided(key) && tool && !this.passThrough(tool) && error === undefined) {
        await this.undecided(event, ctx, key, harness);
      }
      return;
    }
    this.open.delete(key);
    let body: ResultRequest;
    if (error !== undefined) {
      const timedOut = /timed? ?out|timeout/i.test(error);
      body = { status: timedOut ? "timeout" : "error", error_message: error.slice(0, 4096) };
    } else {
      body = { status: "success", result: boundedResult(result) };
    }
    try {
      const receipt = await this.o.client.result(o.decisionId, body);
      this.o.logger?.info?.(`clawea: ${o.tool} result recorded (decision ${o.decisionId}, receipt ${receipt})`);
    } catch (e) {
      const ce = e instanceof ClaweaError ? e : new ClaweaError(Codes.internal, String(e));
      this.o.logger?.error?.(`clawea: the result of ${o.tool} (decision ${o.decisionId}) was not recorded: ${ce.code}: ${ce.message}`);
    }
  }
}

/** The parts of OpenClaw's tool-result middleware event the policy reads. */
export type MiddlewareEvent = {
  toolCallId: string;
  toolName: string;
  args?: Record<string, unknown>;
  isError?: boolean;
  result?: unknown;
};

export type MiddlewareContext = { runtime?: string; agentId?: string; sessionId?: string; sessionKey?: string; runId?: string };

/** resultText is the text of a tool result's content blocks (for an error message). */
function resultText(r: unknown): string {
  const content = (r as { content?: unknown } | undefined)?.content;
  if (!Array.isArray(content)) return "";
  const parts: string[] = [];
  for (const b of content) {
    if (b && typeof b === "object" && (b as { type?: unknown }).type === "text" && typeof (b as { text?: unknown }).text === "string") {
      parts.push((b as { text: string }).text);
    }
  }
  return parts.join("\n").slice(0, 4096);
}

function callKey(event: { toolCallId?: string }, ctx: ToolContext | undefined): string | undefined {
  const id = event?.toolCallId ?? ctx?.toolCallId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** boundedResult keeps a tool's result JSON and under maxResultBytes. */
export function boundedResult(v: unknown): unknown {
  let s: string | undefined;
  try {
    s = JSON.stringify(v ?? null);
  } catch {
    return { unserializable: true };
  }
  if (s === undefined) return null;
  const n = Buffer.byteLength(s);
  if (n <= maxResultBytes) return JSON.parse(s);
  return { truncated: true, bytes: n, head: s.slice(0, 4096) };
}
