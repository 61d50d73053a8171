// register(api): wires the policy into OpenClaw.

import { Client, Codes } from "./client.ts";
import { parseConfig } from "./config.ts";
import { sandboxClaim, scanConfig } from "./coverage.ts";
import { ClaweaPolicy, type AfterEvent, type Logger, type MiddlewareContext, type MiddlewareEvent, type ToolContext, type ToolEvent } from "./policy.ts";

/** The plugin's id in OpenClaw (plugins.entries, plugins.allow). */
export const PluginName = "clawea";

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
  registerAgentToolResultMiddleware?: (
    handler: (event: MiddlewareEvent, ctx: MiddlewareContext) => Promise<void>,
    opts?: { runtimes?: string[] },
  ) => void;
};

/** The environment the plugin gives every exec command: the job token blanked. */
export const HiddenExecEnv: Readonly<Record<string, string>> = Object.freeze({ CLAWEA_TOKEN: "", CLAWEA_TOKEN_FILE: "" });

/** The runtimes the tool-result middleware is declared for (contracts.agentToolResultMiddleware). */
export const MiddlewareRuntimes = ["openclaw", "codex"];

export type Deps = {
  env?: Record<string, string | undefined>;
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
};

/** register is the plugin entry's register(api); deps are for tests. */
export function register(api: PluginApi, deps: Deps = {}): ClaweaPolicy | undefined {
  const log = api.logger ?? {};
  const env = deps.env ?? process.env;
  const parsed = parseConfig(api.pluginConfig);
  if (!parsed.ok) {
    // Registered anyway, so that a broken config blocks instead of
    // silently turning the gate off.
    const reason = `clawea: ${Codes.badConfig} — every tool call is blocked: ${parsed.error}`;
    log.error?.(reason);
    api.registerTrustedToolPolicy({
      id: PolicyID,
      description: "clawea decides every tool call (misconfigured: blocks all)",
      evaluate: () => ({ block: true, blockReason: reason }),
    });
    return undefined;
  }
  const s = parsed.settings;
  const client = new Client({
    server: s.server,
    token: () => env.CLAWEA_TOKEN || undefined,
    timeoutMs: s.decideTimeoutMs,
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  // OpenClaw refuses a trusted tool policy of a plugin that is not enabled
  // and allowed, without telling the plugin (red team): every tool would
  // run undecided. Say it loudly where the config shows it.
  const plugins = (api.config as { plugins?: { allow?: unknown; deny?: unknown; entries?: Record<string, { enabled?: unknown }> } } | undefined)?.plugins;
  if (Array.isArray(plugins?.allow) && !plugins.allow.includes(PluginName)) {
    log.error?.(`clawea: ${Codes.notAllowed} — plugins.allow does not list "${PluginName}": OpenClaw will not run the clawea tool policy and every tool runs undecided; add "${PluginName}" to plugins.allow`);
  }
  if (Array.isArray(plugins?.deny) && plugins.deny.includes(PluginName)) {
    log.error?.(`clawea: ${Codes.notAllowed} — plugins.deny lists "${PluginName}": OpenClaw will not run the clawea tool policy`);
  }
  if (plugins?.entries?.[PluginName]?.enabled !== true) {
    log.error?.(`clawea: ${Codes.notAllowed} — plugins.entries.${PluginName}.enabled is not true: OpenClaw will not run the clawea tool policy`);
  }
  const pins = scanConfig(api.config);
  const uncovered = pins.filter((p) => p.coverage === "uncovered");
  for (const p of pins) {
    const msg = `clawea: agent runtime ${p.id} (${p.path}) is ${p.coverage} by the clawea tool policy (see integrations/openclaw/README.md)`;
    if (p.coverage === "uncovered") log.error?.(`${msg}; ${s.uncoveredRuntime === "block" ? "every tool call is blocked until it is removed" : "its tools run without a clawea decision"}`);
    else if (p.coverage === "partial") log.warn?.(msg);
  }
  // Pass clawea's MCP tools through only when OpenClaw's config has that
  // MCP server: otherwise a tool named <mcpServer>__* is someone else's.
  const servers = (api.config as { mcp?: { servers?: Record<string, unknown> } } | undefined)?.mcp?.servers;
  let mcpServer = s.mcpServer;
  if (mcpServer !== "" && !(servers && typeof servers === "object" && Object.hasOwn(servers, mcpServer))) {
    log.info?.(`clawea: no mcp.servers.${mcpServer} in OpenClaw's config: tools named ${mcpServer}__* are decided like any other`);
    mcpServer = "";
  }
  const policy = new ClaweaPolicy({
    client,
    jobId: s.jobId,
    uncoveredRuntime: s.uncoveredRuntime,
    uncoveredPins: uncovered,
    approvalWaitMs: s.approvalWaitMs,
    pollIntervalMs: s.pollIntervalMs,
    mcpServer,
    logger: log,
    sandboxed: (ctx) => sandboxClaim(api.config, ctx.agentId),
    stateKey: `${s.server}\u0000${s.jobId}`,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.sleep ? { sleep: deps.sleep } : {}),
  });
  api.registerTrustedToolPolicy({
    id: PolicyID,
    description: `clawea (${s.server}, job ${s.jobId}) decides every tool call`,
    evaluate: (event, ctx) => policy.evaluate(event, ctx ?? {}),
  });
  // Results are closed by the tool-result middleware, which OpenClaw awaits
  // before the model sees the result and which runs where typed hooks do
  // not (openclaw agent exec); after_tool_call closes what it misses and
  // witnesses calls that ran without a decision. The first to see a call
  // closes it.
  if (typeof api.registerAgentToolResultMiddleware === "function") {
    api.registerAgentToolResultMiddleware((event, ctx) => policy.toolResult(event, ctx ?? {}), { runtimes: MiddlewareRuntimes });
  }
  api.on("after_tool_call", (event: AfterEvent, ctx: ToolContext) => policy.afterToolCall(event, ctx ?? {}));
  // OpenClaw's exec on the gateway host inherits OpenClaw's environment,
  // job token included: blank it for every command (where OpenClaw runs
  // this hook; see the README on agent exec and on sandboxing).
  api.on("resolve_exec_env", () => ({ ...HiddenExecEnv }));
  if (!env.CLAWEA_TOKEN) {
    log.error?.(`clawea: ${Codes.noToken} — CLAWEA_TOKEN is not set in OpenClaw's environment: every tool call will be blocked`);
  }
  log.info?.(`clawea: deciding tool calls with ${s.server} for job ${s.jobId}`);
  return policy;
}
