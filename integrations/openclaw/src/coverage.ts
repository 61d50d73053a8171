// Coverage: which OpenClaw agent runtimes run the trusted tool policy
// before their tools, and how the plugin tells the operator when a run is
// on one that does not. See README.md "Coverage" for the sources.

/** Coverage of an OpenClaw agent runtime id (agentRuntime.id). */
export type Coverage = "covered" | "partial" | "uncovered";

/**
 * runtimeCoverage classifies a runtime id as read in OpenClaw 2026.9.6:
 *  - openclaw: the embedded runner wraps every tool (core, MCP, plugin)
 *    with the before-tool-call pipeline, trusted policies first.
 *  - copilot: bridged OpenClaw tools go through the same wrapper.
 *  - codex: OpenClaw dynamic tools are wrapped; Codex-native shell, patch
 *    and MCP calls reach the policy through the native PreToolUse relay,
 *    whose command times out after 5 s by default (a pending approval is
 *    then blocked, not waited for); native tools outside the relay are not
 *    decided.
 *  - claude-cli: native tool permission requests go through the
 *    before-tool-call pipeline (cli-runner execute-plugin); not tested here.
 *  - acp and any other CLI backend or harness: tools run in another process
 *    and are at most reported afterwards: not covered.
 */
export function runtimeCoverage(id: string): Coverage {
  switch (id.trim().toLowerCase()) {
    case "openclaw":
    case "pi":
    case "embedded":
      return "covered";
    case "copilot":
    case "codex":
    case "claude-cli":
    case "auto":
      return "partial";
    default:
      return "uncovered";
  }
}

export type RuntimePin = { id: string; path: string; coverage: Coverage };

/**
 * scanConfig lists the runtime selections in an OpenClaw config: every
 * agentRuntime (a string or {id}) and every `runtime: "acp"` entry, with
 * its path. Without any, runs use the embedded runtime (or Codex for
 * official OpenAI routes, which clawea's proxied providers are not).
 */
export function scanConfig(cfg: unknown): RuntimePin[] {
  const out: RuntimePin[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > 12 || typeof v !== "object" || v === null || seen.has(v) || out.length >= 64) return;
    seen.add(v);
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1));
      return;
    }
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      const p = path ? `${path}.${k}` : k;
      if (k === "plugins") continue; // plugin configs are not runtime selections
      if (k === "agentRuntime") {
        // Whole-agent runtime keys are legacy and ignored by OpenClaw's
        // runtime selection (agents.defaults / agents.entries.<id>).
        if (path === "agents.defaults" || /^agents\.entries\.[^.]+$/.test(path)) continue;
        const id = typeof x === "string" ? x : typeof x === "object" && x !== null ? (x as { id?: unknown }).id : undefined;
        if (typeof id === "string" && id.trim() !== "") out.push({ id: id.trim(), path: p, coverage: runtimeCoverage(id) });
        continue;
      }
      if (path === "" && k === "acp" && typeof x === "object" && x !== null && (x as { enabled?: unknown }).enabled === true) {
        // ACP harnesses run their tools in another process: spawning one
        // is blocked by the plugin (sessions_spawn runtime "acp").
        out.push({ id: "acp", path: "acp.enabled", coverage: "partial" });
      }
      if (k === "runtime" && x === "acp") {
        out.push({ id: "acp", path: p, coverage: "uncovered" });
        continue;
      }
      walk(x, p, depth + 1);
    }
  };
  walk(cfg, "", 0);
  return out;
}

/**
 * sandboxClaim is what the config says about the sandbox of an agent's
 * calls: mode "all" → true, "off" (the default) → false, "non-main" →
 * unknown (it depends on the session). A claim, not a proof (docs/decide.md).
 */
export function sandboxClaim(cfg: unknown, agentId: string | undefined): boolean | undefined {
  const agents = (cfg as { agents?: Record<string, any> } | undefined)?.agents;
  if (!agents || typeof agents !== "object") return false;
  const entry = agentId && agents.entries && typeof agents.entries === "object" ? agents.entries[agentId] : undefined;
  const mode = entry?.sandbox?.mode ?? agents.defaults?.sandbox?.mode ?? "off";
  if (mode === "all") return true;
  if (mode === "off") return false;
  return undefined;
}

/**
 * Witness remembers the tool calls the policy saw, so that an
 * after_tool_call for a call it never decided (a tool that ran on a path
 * that skips the trusted policies) can be reported.
 */
export class Witness {
  seen = new Map<string, number>();
  tainted = new Set<string>();
  max: number;

  constructor(max = 8192) {
    this.max = max;
  }

  saw(toolCallId: string | undefined): void {
    if (!toolCallId) return;
    if (this.seen.size >= this.max) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(toolCallId, Date.now());
  }

  decided(toolCallId: string): boolean {
    return this.seen.has(toolCallId);
  }

  taint(scope: string): void {
    // Past the bound, every scope is tainted (never forget one).
    this.tainted.add(this.tainted.size >= 1024 ? "*" : scope);
  }

  isTainted(scope: string): boolean {
    return this.tainted.has(scope) || this.tainted.has("*");
  }
}
