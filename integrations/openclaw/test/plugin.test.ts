// Unit tests of the clawea OpenClaw plugin against a fake clawea decision
// API on 127.0.0.1 (node --test; Node >= 22.6 strips the types).

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import entry from "../index.ts";
import { register, PolicyID, MiddlewareRuntimes, type PluginApi } from "../src/plugin.ts";
import { parseDecision, ClaweaError } from "../src/client.ts";
import { parseConfig } from "../src/config.ts";
import { scanConfig, runtimeCoverage } from "../src/coverage.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const token = "tok.test.job";

type Seen = { method: string; url: string; auth: string | undefined; body: any };
type Handler = (req: Seen, n: number) => { status?: number; body?: unknown; raw?: string; delayMs?: number; destroy?: boolean };

/** fakeClawea serves handler's answers and records every request. */
async function fakeClawea(handler: Handler) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      let body: any;
      try {
        body = JSON.parse(data);
      } catch {
        body = data;
      }
      const s: Seen = { method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, body };
      seen.push(s);
      const a = handler(s, seen.length);
      const send = () => {
        if (a.destroy) {
          req.socket.destroy();
          return;
        }
        res.writeHead(a.status ?? 200, { "content-type": "application/json" });
        res.end(a.raw ?? JSON.stringify(a.body ?? {}));
      };
      if (a.delayMs) setTimeout(send, a.delayMs).unref();
      else send();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

type Captured = {
  evaluate: (event: any, ctx: any) => Promise<any>;
  middleware?: (event: any, ctx: any) => Promise<unknown>;
  middlewareRuntimes?: string[];
  hooks: Map<string, (event: any, ctx: any) => unknown>;
  logs: string[];
  policyIds: string[];
};

function load(config: unknown, opts: { env?: Record<string, string | undefined>; openclawConfig?: unknown; sleep?: (ms: number) => Promise<void> } = {}): Captured {
  const c: Captured = { evaluate: async () => undefined, hooks: new Map(), logs: [], policyIds: [] };
  const api: PluginApi = {
    pluginConfig: config,
    config: opts.openclawConfig ?? {},
    logger: {
      info: (m) => c.logs.push("info " + m),
      warn: (m) => c.logs.push("warn " + m),
      error: (m) => c.logs.push("error " + m),
    },
    registerTrustedToolPolicy: (p) => {
      c.policyIds.push(p.id);
      c.evaluate = async (e, x) => p.evaluate(e, x);
    },
    on: (name, h) => c.hooks.set(name, h),
    registerAgentToolResultMiddleware: (h, o) => {
      c.middleware = h;
      c.middlewareRuntimes = o?.runtimes;
    },
  };
  register(api, { env: opts.env ?? { CLAWEA_TOKEN: token }, ...(opts.sleep ? { sleep: opts.sleep } : {}) });
  return c;
}

const allow = (id = "dec_1") => ({ body: { decision: "allow", decision_id: id, tool: "openclaw/exec", action: "tool:execute", resource: "tool://openclaw/exec", statements: ["AllowExec"], policy_hash_b64u: "h" } });
const execEvent = { toolName: "exec", params: { command: "git status" }, runId: "run-1", toolCallId: "call-1" };
const execCtx = {
  agentId: "main", sessionKey: "agent:main:main", runId: "run-1", toolCallId: "call-1",
  trace: { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: "01" },
  requester: { channel: "telegram", accountId: "acc", senderId: "u1", senderIsOwner: true },
};

test("allow: the call proceeds; the request carries tool, params, correlation and claimed facts; after_tool_call records the result", async () => {
  const f = await fakeClawea((req) => (req.url === "/v1/decide" ? allow("dec_42") : { body: { decision_id: "dec_42", receipt_id: "rcpt_1", status: "success" } }));
  try {
    const p = load({ server: f.url, jobId: "job_1" }, { openclawConfig: { agents: { defaults: { sandbox: { mode: "all" } } } } });
    assert.deepEqual(p.policyIds, [PolicyID]);
    const r = await p.evaluate({ ...execEvent, params: { command: "git status", elevated: false } }, execCtx);
    assert.equal(r, undefined);
    assert.equal(f.seen.length, 1);
    const d = f.seen[0];
    assert.equal(d.method, "POST");
    assert.equal(d.url, "/v1/decide");
    assert.equal(d.auth, "Bearer " + token);
    assert.deepEqual(d.body, {
      tool: { runtime: "openclaw", name: "exec" },
      params: { command: "git status", elevated: false },
      correlation: {
        run_id: "run-1", tool_call_id: "call-1", session_key: "agent:main:main", agent_id: "main",
        trace: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
      },
      facts: { sandboxed: true, elevated: false, requester: { channel: "telegram", account_id: "acc", sender_id: "u1", sender_is_owner: true } },
    });
    await p.hooks.get("after_tool_call")!({ toolName: "exec", params: {}, runId: "run-1", toolCallId: "call-1", result: { stdout: "clean" } }, { runId: "run-1", toolCallId: "call-1" });
    assert.equal(f.seen.length, 2);
    assert.equal(f.seen[1].url, "/v1/decide/dec_42/result");
    assert.equal(f.seen[1].auth, "Bearer " + token);
    assert.deepEqual(f.seen[1].body, { status: "success", result: { stdout: "clean" } });
    // Closed once: a second after_tool_call for the call sends nothing.
    await p.hooks.get("after_tool_call")!({ toolName: "exec", params: {}, toolCallId: "call-1", result: {} }, {});
    assert.equal(f.seen.length, 2);
  } finally {
    await f.close();
  }
});

test("after_tool_call with an error closes the decision as error (timeout as timeout); a failed close is logged, not thrown", async () => {
  let n = 0;
  const f = await fakeClawea((req) => {
    if (req.url === "/v1/decide") return allow("dec_" + ++n);
    if (req.url === "/v1/decide/dec_2/result") return { status: 410, body: { error: { code: "DECISION_EXPIRED", message: "past result_expires_at" } } };
    return { body: { decision_id: "x", receipt_id: "rcpt", status: "error" } };
  });
  try {
    const p = load({ server: f.url, jobId: "job_1" });
    assert.equal(await p.evaluate({ ...execEvent, toolCallId: "a" }, {}), undefined);
    assert.equal(await p.evaluate({ ...execEvent, toolCallId: "b" }, {}), undefined);
    assert.equal(await p.evaluate({ ...execEvent, toolCallId: "c" }, {}), undefined);
    const after = p.hooks.get("after_tool_call")!;
    await after({ toolName: "exec", toolCallId: "a", error: "exit code 1" }, {});
    await after({ toolName: "exec", toolCallId: "b", result: {} }, {});
    await after({ toolName: "exec", toolCallId: "c", error: "Command timed out after 30s" }, {});
    const results = f.seen.filter((s) => s.url.endsWith("/result"));
    assert.deepEqual(results.map((s) => [s.url, s.body.status]), [
      ["/v1/decide/dec_1/result", "error"],
      ["/v1/decide/dec_2/result", "success"],
      ["/v1/decide/dec_3/result", "timeout"],
    ]);
    assert.equal(results[0].body.error_message, "exit code 1");
    assert.ok(p.logs.some((l) => l.startsWith("error ") && l.includes("DECISION_EXPIRED")), p.logs.join("\n"));
  } finally {
    await f.close();
  }
});

test("deny: blocked with the code and the statements", async () => {
  const f = await fakeClawea(() => ({ body: { decision: "deny", code: "POLICY_DENIED", message: "the job's policy denies tool:execute", statements: ["NoExec", "NoHost"], receipt_id: "rcpt_9", tool: "openclaw/exec", action: "tool:execute", resource: "tool://openclaw/exec", policy_hash_b64u: "h" } }));
  try {
    const p = load({ server: f.url, jobId: "job_1" });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea denied exec: POLICY_DENIED \(statements NoExec, NoHost\)/);
    assert.equal(f.seen.length, 1);
    // A denied call has nothing to close.
    await p.hooks.get("after_tool_call")!({ toolName: "exec", toolCallId: "call-1", error: "blocked" }, {});
    assert.equal(f.seen.length, 1);
  } finally {
    await f.close();
  }
});

test("needs approval: the call waits, asking again with the same request, and proceeds once approved", async () => {
  const f = await fakeClawea((_req, n) => {
    if (n === 1) return { body: { decision: "needs_approval", code: "APPROVAL_REQUIRED", approval_id: "apv_1", statements: ["ExecWithApproval"], tool: "openclaw/exec", action: "tool:execute", resource: "tool://openclaw/exec", policy_hash_b64u: "h" } };
    if (n < 4) return { body: { decision: "needs_approval", code: "APPROVAL_PENDING", approval_id: "apv_1", statements: ["ExecWithApproval"], tool: "openclaw/exec", action: "tool:execute", resource: "tool://openclaw/exec", policy_hash_b64u: "h" } };
    return { body: { ...allow("dec_7").body, approval_id: "apv_1" } };
  });
  try {
    const sleeps: number[] = [];
    const p = load({ server: f.url, jobId: "job_1", pollIntervalMs: 50 }, { sleep: async (ms) => void sleeps.push(ms) });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r, undefined);
    assert.equal(f.seen.length, 4);
    for (const s of f.seen) assert.deepEqual(s.body, f.seen[0].body);
    assert.deepEqual(sleeps, [50, 50, 50]);
    assert.ok(p.logs.some((l) => l.includes("apv_1") && l.includes("clawea approve allow apv_1")), p.logs.join("\n"));
  } finally {
    await f.close();
  }
});

test("needs approval, then denied by the approver: blocked with APPROVAL_DENIED", async () => {
  const f = await fakeClawea((_req, n) =>
    n === 1
      ? { body: { decision: "needs_approval", code: "APPROVAL_REQUIRED", approval_id: "apv_2", statements: ["S"], tool: "openclaw/exec" } }
      : { body: { decision: "deny", code: "APPROVAL_DENIED", message: "approval apv_2 was denied by did:key:z", statements: ["S"], approval_id: "apv_2", receipt_id: "r" } });
  try {
    const p = load({ server: f.url, jobId: "job_1", pollIntervalMs: 50 });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea denied exec: APPROVAL_DENIED \(statements S\) \[approval apv_2\]/);
  } finally {
    await f.close();
  }
});

test("needs approval not decided within approvalWaitMs: blocked with CLAWEA_APPROVAL_WAIT_EXPIRED", async () => {
  const f = await fakeClawea(() => ({ body: { decision: "needs_approval", code: "APPROVAL_PENDING", approval_id: "apv_3", tool: "openclaw/exec" } }));
  try {
    const p = load({ server: f.url, jobId: "job_1", approvalWaitMs: 300, pollIntervalMs: 50 });
    const t0 = Date.now();
    const r = await p.evaluate(execEvent, execCtx);
    const took = Date.now() - t0;
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea: CLAWEA_APPROVAL_WAIT_EXPIRED — exec blocked.*apv_3/);
    assert.ok(took >= 290 && took < 3000, `took ${took} ms`);
    assert.ok(f.seen.length >= 3, `asked ${f.seen.length} times`);
  } finally {
    await f.close();
  }
});

test("a cancelled tool call stops waiting for the approval: blocked with CLAWEA_CANCELLED", async () => {
  const f = await fakeClawea(() => ({ body: { decision: "needs_approval", code: "APPROVAL_PENDING", approval_id: "apv_4" } }));
  try {
    const p = load({ server: f.url, jobId: "job_1", pollIntervalMs: 10_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100).unref();
    const t0 = Date.now();
    const r = await p.evaluate(execEvent, { ...execCtx, abortSignal: ac.signal });
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea: CLAWEA_CANCELLED/);
    assert.ok(Date.now() - t0 < 5000);
  } finally {
    await f.close();
  }
});

test("clawea unreachable: blocked with CLAWEA_UNREACHABLE", async () => {
  // A port that was just free: nothing listens there.
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const p = load({ server: `http://127.0.0.1:${port}`, jobId: "job_1" });
  const r = await p.evaluate(execEvent, execCtx);
  assert.equal(r.block, true);
  assert.match(r.blockReason, /^clawea: CLAWEA_UNREACHABLE — exec blocked/);
});

test("connection reset mid-answer: blocked with CLAWEA_UNREACHABLE", async () => {
  const f = await fakeClawea(() => ({ destroy: true }));
  try {
    const p = load({ server: f.url, jobId: "job_1" });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea: CLAWEA_UNREACHABLE/);
  } finally {
    await f.close();
  }
});

test("slow answer past the budget: blocked with CLAWEA_TIMEOUT within decideTimeoutMs", async () => {
  const f = await fakeClawea(() => ({ ...allow(), delayMs: 3000 }));
  try {
    const p = load({ server: f.url, jobId: "job_1", decideTimeoutMs: 200 });
    const t0 = Date.now();
    const r = await p.evaluate(execEvent, execCtx);
    const took = Date.now() - t0;
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea: CLAWEA_TIMEOUT — exec blocked: no answer within 200 ms/);
    assert.ok(took >= 190 && took < 1500, `took ${took} ms`);
  } finally {
    await f.close();
  }
});

test("malformed answers: blocked with CLAWEA_BAD_ANSWER", async () => {
  const bad: Array<{ raw: string } | { body: unknown }> = [
    { raw: "not json" },
    { raw: "" },
    { body: [] },
    { body: null },
    { body: { decision: "maybe" } },
    { body: { decision: "ALLOW", decision_id: "d" } },
    { body: { decision: "allow" } },
    { body: { decision: "allow", decision_id: 7 } },
    { body: { decision: "allow", decision_id: "d", statements: "S" } },
    { body: { decision: "deny" } },
    { body: { decision: "deny", code: "lower case" } },
    { body: { decision: "needs_approval", code: "APPROVAL_REQUIRED" } },
    { raw: JSON.stringify({ decision: "allow", decision_id: "d", pad: "x".repeat(1 << 20) }) },
  ];
  for (const b of bad) {
    const f = await fakeClawea(() => b);
    try {
      const p = load({ server: f.url, jobId: "job_1" });
      const r = await p.evaluate(execEvent, execCtx);
      assert.equal(r?.block, true, JSON.stringify(b).slice(0, 80));
      assert.match(r.blockReason, /^clawea: CLAWEA_BAD_ANSWER — exec blocked/, JSON.stringify(b).slice(0, 80));
    } finally {
      await f.close();
    }
  }
});

test("HTTP errors: clawea's code when readable, else CLAWEA_HTTP_ERROR; a redirect is not followed", async () => {
  const cases: Array<[ReturnType<Handler>, RegExp]> = [
    [{ status: 401, body: { error: { code: "TOKEN_EXPIRED", message: "the token has expired" } } }, /^clawea: TOKEN_EXPIRED — exec blocked: the token has expired/],
    [{ status: 409, body: { error: { code: "JOB_NOT_OPEN", message: "finished" } } }, /^clawea: JOB_NOT_OPEN/],
    [{ status: 500, raw: "oops" }, /^clawea: CLAWEA_HTTP_ERROR — exec blocked: HTTP 500/],
    [{ status: 200, raw: "{}" }, /^clawea: CLAWEA_BAD_ANSWER/],
    [{ status: 302, raw: "" }, /^clawea: (CLAWEA_UNREACHABLE|CLAWEA_HTTP_ERROR)/],
  ];
  for (const [answer, want] of cases) {
    const f = await fakeClawea(() => answer);
    try {
      const p = load({ server: f.url, jobId: "job_1" });
      const r = await p.evaluate(execEvent, execCtx);
      assert.equal(r?.block, true);
      assert.match(r.blockReason, want);
    } finally {
      await f.close();
    }
  }
});

test("no token: blocked with CLAWEA_NO_TOKEN and nothing is sent", async () => {
  const f = await fakeClawea(() => allow());
  try {
    const p = load({ server: f.url, jobId: "job_1" }, { env: {} });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /^clawea: CLAWEA_NO_TOKEN/);
    assert.equal(f.seen.length, 0);
    assert.ok(p.logs.some((l) => l.startsWith("error ") && l.includes("CLAWEA_NO_TOKEN")));
    // A token in the plugin's config is refused (it would sit in a file).
    const q = load({ server: f.url, jobId: "job_1", token: "literal" });
    const rq = await q.evaluate(execEvent, execCtx);
    assert.match(rq.blockReason, /^clawea: CLAWEA_BAD_CONFIG.*unknown config key "token"/);
    assert.equal(f.seen.length, 0);
  } finally {
    await f.close();
  }
});

test("a bad or missing config blocks every call with CLAWEA_BAD_CONFIG", async () => {
  for (const cfg of [undefined, {}, { server: "http://example.com", jobId: "j" }, { server: "http://127.0.0.1:1", jobId: "j", extra: 1 }, { server: "http://127.0.0.1:1", jobId: "j", decideTimeoutMs: 0 }, { server: "http://127.0.0.1:1/x?y=1", jobId: "j" }]) {
    const p = load(cfg);
    assert.deepEqual(p.policyIds, [PolicyID]);
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true, JSON.stringify(cfg));
    assert.match(r.blockReason, /^clawea: CLAWEA_BAD_CONFIG/);
  }
});

test("clawea's own MCP tools pass through without a second decision; other MCP and plugin tools are decided", async () => {
  const f = await fakeClawea(() => allow());
  try {
    const withServer = { mcp: { servers: { clawea: { command: "/opt/clawea", args: ["mcp"] } } } };
    const p = load({ server: f.url, jobId: "job_1" }, { openclawConfig: withServer });
    assert.equal(await p.evaluate({ toolName: "clawea__fs__read_text_file", params: {}, toolCallId: "m1" }, {}), undefined);
    assert.equal(f.seen.length, 0);
    assert.equal(await p.evaluate({ toolName: "crm__lookup", params: { id: 1 }, toolCallId: "m2" }, {}), undefined);
    assert.equal(f.seen.length, 1);
    assert.equal(f.seen[0].body.tool.name, "crm__lookup");
    // Another server name: clawea__ is then decided.
    const q = load({ server: f.url, jobId: "job_1", mcpServer: "gw" }, { openclawConfig: withServer });
    await q.evaluate({ toolName: "clawea__x", params: {}, toolCallId: "m3" }, {});
    assert.equal(f.seen.length, 2);
    // No such MCP server in OpenClaw's config: clawea__ tools are someone else's, decided.
    const r = load({ server: f.url, jobId: "job_1" });
    await r.evaluate({ toolName: "clawea__y", params: {}, toolCallId: "m4" }, {});
    assert.equal(f.seen.length, 3);
    assert.equal(f.seen[2].body.tool.name, "clawea__y");
  } finally {
    await f.close();
  }
});

test("a tool name outside clawea's alphabet is blocked without asking", async () => {
  const f = await fakeClawea(() => allow());
  try {
    const p = load({ server: f.url, jobId: "job_1" });
    const r = await p.evaluate({ toolName: "a/b", params: {} }, {});
    assert.equal(r.block, true);
    assert.match(r.blockReason, /INVALID_REQUEST/);
    assert.equal(f.seen.length, 0);
  } finally {
    await f.close();
  }
});

test("a tool that ran without a decision is reported and recorded; mode block then blocks the session", async () => {
  const f = await fakeClawea((req) => (req.url === "/v1/decide" ? allow() : { status: 201, body: { seq: 1 } }));
  try {
    const p = load({ server: f.url, jobId: "job_1" }, { openclawConfig: { mcp: { servers: { clawea: {} } } } });
    const after = p.hooks.get("after_tool_call")!;
    await after({ toolName: "shell", toolCallId: "native-1", result: { ok: true } }, { sessionKey: "agent:main:s1", runId: "r1", agentId: "main" });
    assert.equal(f.seen.length, 1);
    assert.equal(f.seen[0].url, "/v1/jobs/job_1/events");
    assert.equal(f.seen[0].auth, "Bearer " + token);
    assert.deepEqual(f.seen[0].body, {
      event_type: "openclaw_undecided_tool_call",
      payload: { runtime: "openclaw", tool: "shell", tool_call_id: "native-1", run_id: "r1", session_key: "agent:main:s1", agent_id: "main", mode: "block" },
    });
    assert.ok(p.logs.some((l) => l.startsWith("error ") && l.includes("CLAWEA_RUNTIME_UNCOVERED")));
    const r = await p.evaluate(execEvent, { ...execCtx, sessionKey: "agent:main:s1" });
    assert.equal(r.block, true);
    assert.match(r.blockReason, /CLAWEA_RUNTIME_UNCOVERED/);
    // Another session is not affected.
    assert.equal(await p.evaluate(execEvent, { ...execCtx, sessionKey: "agent:main:s2" }), undefined);
    // A failed call the policy never saw (blocked earlier) is not reported; a decided one is not either.
    await after({ toolName: "exec", toolCallId: "other", error: "blocked by bundled policy" }, {});
    await after({ toolName: "clawea__x", toolCallId: "mcp-1", result: {} }, {});
    assert.equal(f.seen.filter((s) => s.url.includes("/events")).length, 1);
    // Mode warn: recorded, not blocked.
    const q = load({ server: f.url, jobId: "job_1", uncoveredRuntime: "warn" });
    await q.hooks.get("after_tool_call")!({ toolName: "shell", toolCallId: "native-2", result: {} }, { sessionKey: "agent:main:s3" });
    assert.equal(await q.evaluate(execEvent, { ...execCtx, sessionKey: "agent:main:s3" }), undefined);
  } finally {
    await f.close();
  }
});

test("an uncovered runtime in OpenClaw's config blocks every call (mode block) and is logged", async () => {
  const f = await fakeClawea(() => allow());
  try {
    const cfg = { models: { providers: { anthropic: { models: [{ id: "m", agentRuntime: { id: "my-cli" } }] } } }, agents: { defaults: { agentRuntime: "acp-legacy-ignored" } } };
    const p = load({ server: f.url, jobId: "job_1" }, { openclawConfig: cfg });
    const r = await p.evaluate(execEvent, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /CLAWEA_RUNTIME_UNCOVERED.*my-cli at models\.providers\.anthropic\.models\[0\]\.agentRuntime/);
    assert.ok(!r.blockReason.includes("acp-legacy-ignored"));
    assert.equal(f.seen.length, 0);
    const q = load({ server: f.url, jobId: "job_1", uncoveredRuntime: "warn" }, { openclawConfig: cfg });
    assert.equal(await q.evaluate(execEvent, execCtx), undefined);
    assert.ok(q.logs.some((l) => l.startsWith("error ") && l.includes("my-cli")));
  } finally {
    await f.close();
  }
});

test("scanConfig and runtimeCoverage", () => {
  assert.equal(runtimeCoverage("openclaw"), "covered");
  assert.equal(runtimeCoverage("codex"), "partial");
  assert.equal(runtimeCoverage("claude-cli"), "partial");
  assert.equal(runtimeCoverage("acp"), "uncovered");
  assert.equal(runtimeCoverage("gemini-cli"), "uncovered");
  assert.deepEqual(scanConfig({}), []);
  assert.deepEqual(
    scanConfig({ agents: { entries: { a: { agentRuntime: "x", models: { "anthropic/m": { agentRuntime: { id: "claude-cli" } } } } }, list: [{ runtime: "acp" }] }, plugins: { entries: { x: { agentRuntime: "zz" } } } }),
    [
      { id: "claude-cli", path: 'agents.entries.a.models.anthropic/m.agentRuntime', coverage: "partial" },
      { id: "acp", path: "agents.list[0].runtime", coverage: "uncovered" },
    ],
  );
});

test("parseDecision keeps the fields it needs", () => {
  assert.deepEqual(parseDecision(JSON.stringify({ decision: "deny", code: "UNKNOWN_TOOL", message: "m", statements: [], receipt_id: "r1" })), {
    decision: "deny", code: "UNKNOWN_TOOL", message: "m", statements: [], receiptId: "r1",
  });
});

test("the package: manifest declares the trusted policy, the entry is index.ts and registers it", () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(here, "..", "openclaw.plugin.json"), "utf8"));
  assert.equal(manifest.id, "clawea");
  assert.deepEqual(manifest.contracts.trustedToolPolicies, [PolicyID]);
  assert.deepEqual(manifest.contracts.agentToolResultMiddleware, MiddlewareRuntimes);
  assert.deepEqual(manifest.configSchema.required, ["server", "jobId"]);
  const pkg = JSON.parse(fs.readFileSync(path.join(here, "..", "package.json"), "utf8"));
  assert.deepEqual(pkg.openclaw.extensions, ["./index.ts"]);
  assert.equal(entry.id, manifest.id);
  const ids: string[] = [];
  entry.register({ pluginConfig: { server: "http://127.0.0.1:9", jobId: "j" }, registerTrustedToolPolicy: (p: { id: string }) => ids.push(p.id), on: () => {} } as any);
  assert.deepEqual(ids, [PolicyID]);
});

test("two instances of the plugin (OpenClaw loads it per registry) share open decisions: the result is recorded, nothing is reported as undecided", async () => {
  const f = await fakeClawea((req) => (req.url === "/v1/decide" ? allow("dec_shared") : { status: 201, body: { decision_id: "dec_shared", receipt_id: "r", status: "success" } }));
  try {
    const a = load({ server: f.url, jobId: "job_shared" });
    const b = load({ server: f.url, jobId: "job_shared" });
    assert.equal(await a.evaluate({ ...execEvent, toolCallId: "shared-1" }, {}), undefined);
    await b.hooks.get("after_tool_call")!({ toolName: "exec", toolCallId: "shared-1", result: { ok: 1 } }, {});
    await a.hooks.get("after_tool_call")!({ toolName: "exec", toolCallId: "shared-1", result: { ok: 1 } }, {});
    assert.deepEqual(f.seen.map((s) => s.url), ["/v1/decide", "/v1/decide/dec_shared/result"]);
  } finally {
    await f.close();
  }
});

// The parsers of untrusted input are TypeScript, out of reach of Go's
// native fuzzing: this randomized test stands in. Mutations of valid
// answers and random JSON must give a well-formed decision or a
// ClaweaError, never another exception.
test("parseDecision and parseConfig on random and mutated inputs: a decision/settings or a coded error, nothing else", () => {
  let seed = 0x2545f491;
  const rnd = (n: number) => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const atoms = [null, true, false, 0, -1, 1.5, "", "allow", "deny", "needs_approval", "APPROVAL_PENDING", "apv_1", "dec_1", "x".repeat(300), "\u0000", [], {}];
  const keys = ["decision", "decision_id", "code", "message", "statements", "approval_id", "receipt_id", "__proto__", "constructor", "server", "jobId", "decideTimeoutMs", "approvalWaitMs", "pollIntervalMs", "mcpServer", "uncoveredRuntime"];
  const value = (depth: number): unknown => {
    const k = rnd(depth > 2 ? 3 : 6);
    if (k < 3) return atoms[rnd(atoms.length)];
    if (k === 3) return Array.from({ length: rnd(4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = rnd(6); i > 0; i--) o[keys[rnd(keys.length)]] = value(depth + 1);
    return o;
  };
  const seeds = [
    JSON.stringify({ decision: "allow", decision_id: "dec_1", statements: ["A"] }),
    JSON.stringify({ decision: "deny", code: "POLICY_DENIED", message: "m", statements: ["S"], receipt_id: "r" }),
    JSON.stringify({ decision: "needs_approval", code: "APPROVAL_REQUIRED", approval_id: "apv_1", statements: [] }),
  ];
  let decisions = 0;
  for (let i = 0; i < 20000; i++) {
    let raw: string;
    if (i % 2 === 0) {
      raw = JSON.stringify(value(0)) ?? "null";
    } else {
      const b = Buffer.from(seeds[rnd(seeds.length)]);
      for (let m = rnd(4); m >= 0; m--) b[rnd(b.length)] = rnd(256);
      raw = b.toString("latin1");
    }
    try {
      const d = parseDecision(raw);
      decisions++;
      assert.ok(["allow", "deny", "needs_approval"].includes(d.decision), raw);
      if (d.decision === "allow") assert.ok(typeof d.decisionId === "string" && d.decisionId.length > 0, raw);
      if (d.decision !== "allow") assert.match(d.code, /^[A-Z][A-Z0-9_]*$/, raw);
      if (d.decision === "needs_approval") assert.ok(d.approvalId, raw);
      assert.ok(Array.isArray(d.statements), raw);
    } catch (e) {
      assert.ok(e instanceof ClaweaError, `${raw}: ${e}`);
      assert.equal((e as ClaweaError).code, "CLAWEA_BAD_ANSWER");
    }
    const c = parseConfig(value(0));
    if (c.ok) assert.ok(c.settings.server.startsWith("http") && c.settings.jobId.length > 0);
    else assert.equal(typeof c.error, "string");
  }
  assert.ok(decisions > 100, `only ${decisions} inputs parsed as decisions`);
});

test("the tool-result middleware closes the decision before the model sees the result, never throws, never changes it; after_tool_call then sends nothing", async () => {
  let n = 0;
  const f = await fakeClawea((req) => {
    if (req.url === "/v1/decide") return allow("dec_m" + ++n);
    if (req.url === "/v1/decide/dec_m3/result") return { status: 503, body: { error: { code: "STORE_UNAVAILABLE", message: "down" } } };
    if (req.url.endsWith("/result")) return { body: { decision_id: "d", receipt_id: "rcpt_m", status: "success" } };
    return { status: 201, body: {} };
  });
  try {
    const p = load({ server: f.url, jobId: "job_mw" });
    assert.deepEqual(p.middlewareRuntimes, ["openclaw", "codex"]);
    for (const id of ["m1", "m2", "m3"]) assert.equal(await p.evaluate({ ...execEvent, toolCallId: id }, {}), undefined);
    const ok = { content: [{ type: "text", text: "clean" }], details: { exitCode: 0 } };
    assert.equal(await p.middleware!({ toolCallId: "m1", toolName: "exec", args: {}, result: ok }, { runtime: "openclaw", runId: "r", sessionKey: "s" }), undefined);
    assert.equal(await p.middleware!({ toolCallId: "m2", toolName: "exec", args: {}, isError: true, result: { content: [{ type: "text", text: "exit 2: no such file" }] } }, { runtime: "openclaw" }), undefined);
    // clawea failing to record: logged, not thrown.
    assert.equal(await p.middleware!({ toolCallId: "m3", toolName: "exec", args: {}, result: ok }, { runtime: "openclaw" }), undefined);
    // Garbage: not thrown either.
    assert.equal(await p.middleware!(undefined as any, undefined as any), undefined);
    const results = f.seen.filter((x) => x.url.endsWith("/result"));
    assert.deepEqual(results.map((x) => [x.url, x.body]), [
      ["/v1/decide/dec_m1/result", { status: "success", result: ok }],
      ["/v1/decide/dec_m2/result", { status: "error", error_message: "exit 2: no such file" }],
      ["/v1/decide/dec_m3/result", { status: "success", result: ok }],
    ]);
    assert.ok(p.logs.some((l) => l.startsWith("error ") && l.includes("STORE_UNAVAILABLE")));
    const before = f.seen.length;
    await p.hooks.get("after_tool_call")!({ toolName: "exec", toolCallId: "m1", result: {} }, {});
    assert.equal(f.seen.length, before);
    // A Codex-native call the policy never saw, relayed to the middleware: recorded with the harness.
    await p.middleware!({ toolCallId: "native-9", toolName: "shell", args: {}, result: ok }, { runtime: "codex", sessionKey: "agent:main:cx", runId: "r9" });
    const ev = f.seen.at(-1)!;
    assert.equal(ev.url, "/v1/jobs/job_mw/events");
    assert.equal(ev.body.payload.harness, "codex");
    assert.equal(ev.body.payload.tool_call_id, "native-9");
  } finally {
    await f.close();
  }
});

test("the shared state survives the module being evaluated twice (OpenClaw may load the plugin anew per registry)", async () => {
  const a = await import("../src/policy.ts?instance=a");
  const b = await import("../src/policy.ts?instance=b");
  assert.notEqual(a.ClaweaPolicy, b.ClaweaPolicy);
  const opts = { client: {} as any, jobId: "j", uncoveredRuntime: "block" as const, approvalWaitMs: 0, pollIntervalMs: 50, mcpServer: "clawea", stateKey: "twice\u0000j" };
  const pa = new a.ClaweaPolicy(opts);
  const pb = new b.ClaweaPolicy(opts);
  pa.open.set("k", { decisionId: "d", tool: "exec", at: 0 });
  pa.witness.saw("k");
  assert.equal(pb.open.get("k")?.decisionId, "d");
  assert.ok(pb.witness.decided("k"));
});

test("exec commands get the job token blanked (resolve_exec_env)", () => {
  const p = load({ server: "http://127.0.0.1:1", jobId: "job_1" });
  const h = p.hooks.get("resolve_exec_env");
  assert.ok(h, "resolve_exec_env is registered");
  const env = h!({ toolName: "exec", host: "gateway", sessionKey: "agent:main:main" }, {}) as Record<string, string>;
  assert.deepEqual(env, { CLAWEA_TOKEN: "", CLAWEA_TOKEN_FILE: "" });
  // A fresh object each time: OpenClaw merges into it.
  assert.notEqual(h!({}, {}), env);
});

test("OpenClaw config that will not run the plugin's policy is reported at load (plugins.allow, plugins.deny, entries.enabled)", () => {
  const on = { plugins: { allow: ["clawea", "memory-core"], entries: { clawea: { enabled: true } } } };
  assert.ok(!load({ server: "http://127.0.0.1:1", jobId: "job_1" }, { openclawConfig: on }).logs.some((l) => l.includes("CLAWEA_PLUGIN_NOT_ALLOWED")));
  for (const cfg of [
    { plugins: { allow: ["memory-core"], entries: { clawea: { enabled: true } } } },
    { plugins: { deny: ["clawea"], entries: { clawea: { enabled: true } } } },
    { plugins: { entries: { clawea: { enabled: false } } } },
  ]) {
    const p = load({ server: "http://127.0.0.1:1", jobId: "job_1" }, { openclawConfig: cfg });
    assert.ok(p.logs.some((l) => l.startsWith("error ") && l.includes("CLAWEA_PLUGIN_NOT_ALLOWED")), JSON.stringify(cfg));
  }
});

test("sessions_spawn on another runtime (ACP) is blocked without asking; a subagent spawn is decided", async () => {
  const f = await fakeClawea(() => allow());
  try {
    const p = load({ server: f.url, jobId: "job_1" });
    const r = await p.evaluate({ toolName: "sessions_spawn", params: { runtime: "acp", agentId: "codex", task: "x" }, toolCallId: "c-acp" }, execCtx);
    assert.equal(r.block, true);
    assert.match(r.blockReason, /CLAWEA_RUNTIME_UNCOVERED/);
    assert.equal(f.seen.length, 0);
    const s = await p.evaluate({ toolName: "sessions_spawn", params: { runtime: "subagent", task: "x" }, toolCallId: "c-sub" }, execCtx);
    assert.equal(s, undefined);
    assert.equal(f.seen.length, 1);
  } finally {
    await f.close();
  }
});

test("acp.enabled in OpenClaw's config is reported as partly covered", () => {
  const pins = scanConfig({ acp: { enabled: true } });
  assert.deepEqual(pins, [{ id: "acp", path: "acp.enabled", coverage: "partial" }]);
});
