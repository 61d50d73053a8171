// register(api): wires the policy into OpenClaw.

import { Client, Codes } from "./client.ts";
import { parseConfig } from "./config.ts";
import { ClaweaPolicy, type AfterEvent, type Logger, type ToolContext, type ToolEvent } from "./policy.ts";

/** The id of the trusted tool policy (declared in contracts.trustedToolPolicies). */
export const PolicyID = "clawea-decide";

/** The parts of OpenClaw's plugin API the plugin uses. */
export type PluginApi = {
  pluginConfig?: unknown;
  config?: unknown;
  logger?: Logger;
  registerTrustedToolPolicy: (p: {
    id: string;
    description: string;
    evaluate: (event: ToolEvent, ctx: ToolContext) => Promise<unknown> | unknown;
  }) => void;
  on: (hook: string, handler: (event: any, ctx: any) => unknown, opts?: { priority?: number; timeoutMs?: number }) => void;
};

export type Deps = {
  env?: Record<string, string | undefined>;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
};

export function register(api: PluginApi, deps: Deps = {}): void {
  const log = api.logger ?? {};
  const env = deps.env ?? process.env;
  const parsed = parseConfig(api.pluginConfig);
  if (!parsed.ok) {
    const reason = `clawea: ${Codes.badConfig} — every tool call is blocked: ${parsed.error}`;
    log.error?.(reason);
    api.registerTrustedToolPolicy({
      id: PolicyID,
      description: "clawea decides every tool call (misconfigured: blocks all)",
      evaluate: () => ({ block: true, blockReason: reason }),
    });
    return;
  }
  const s = parsed.settings;
  const client = new Client({
    server: s.server,
    token: () => s.token ?? env.CLAWEA_TOKEN ?? undefined,
    timeoutMs: s.decideTimeoutMs,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  const policy = new ClaweaPolicy({
    client,
    approvalWaitMs: s.approvalWaitMs,
    pollIntervalMs: s.pollIntervalMs,
    mcpServer: s.mcpServer,
    logger: log,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
  api.registerTrustedToolPolicy({
    id: PolicyID,
    description: `clawea (${s.server}, job ${s.jobId}) decides every tool call`,
    evaluate: (event, ctx) => policy.evaluate(event, ctx ?? {}),
  });
  api.on("after_tool_call", (event: AfterEvent, ctx: ToolContext) => policy.afterToolCall(event, ctx ?? {}));
  if (!s.token && !env.CLAWEA_TOKEN) {
    log.error?.(`clawea: ${Codes.noToken} — CLAWEA_TOKEN is not set in OpenClaw's environment: every tool call will be blocked`);
  }
  log.info?.(`clawea: deciding tool calls with ${s.server} for job ${s.jobId}`);
}
