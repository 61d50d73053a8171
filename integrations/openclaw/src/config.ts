// The plugin's settings: plugins.entries.clawea.config, checked here
// again (the manifest's configSchema is OpenClaw's check). A bad config
// does not stop the plugin from registering: every tool call is then
// blocked with CLAWEA_BAD_CONFIG, so a typo never turns the gate off.

export type Settings = {
  server: string;
  jobId: string;
  decideTimeoutMs: number;
  approvalWaitMs: number;
  pollIntervalMs: number;
  /** Tools named `<mcpServer>__*` are clawea's own MCP tools: not decided again. */
  mcpServer: string;
  /** What to do on a run the plugin cannot cover: block its tools and model turn, or only warn. */
  uncoveredRuntime: "block" | "warn";
};

export const Defaults = {
  decideTimeoutMs: 4000,
  approvalWaitMs: 300_000,
  pollIntervalMs: 2000,
  mcpServer: "clawea",
  uncoveredRuntime: "block",
} as const;

export type Parsed = { ok: true; settings: Settings } | { ok: false; error: string };

const known = new Set([
  "server", "jobId", "decideTimeoutMs", "approvalWaitMs", "pollIntervalMs", "mcpServer", "uncoveredRuntime",
]);

function int(v: unknown, name: string, def: number, min: number, max: number): number | string {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    return `${name} must be an integer from ${min} to ${max}`;
  }
  return v;
}

/** isLoopback reports whether a URL's host is a loopback address. */
export function isLoopback(u: URL): boolean {
  const h = u.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function parseConfig(cfg: unknown): Parsed {
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) {
    return { ok: false, error: "plugins.entries.clawea.config is missing (set server and jobId; clawea openclaw config --plugin prints it)" };
  }
  const c = cfg as Record<string, unknown>;
  for (const k of Object.keys(c)) {
    if (!known.has(k)) return { ok: false, error: `unknown config key ${JSON.stringify(k)}` };
  }
  if (typeof c.server !== "string" || c.server === "") return { ok: false, error: "server is required" };
  let u: URL;
  try {
    u = new URL(c.server);
  } catch {
    return { ok: false, error: "server is not a URL" };
  }
  if (u.protocol !== "https:" && !(u.protocol === "http:" && isLoopback(u))) {
    return { ok: false, error: "server must be https, or http on a loopback address" };
  }
  if (u.username || u.password || u.search || u.hash) return { ok: false, error: "server must not carry credentials, a query or a fragment" };
  if (typeof c.jobId !== "string" || !/^[A-Za-z0-9_-]{1,128}$/.test(c.jobId)) return { ok: false, error: "jobId is required (a clawea job id)" };
  const decideTimeoutMs = int(c.decideTimeoutMs, "decideTimeoutMs", Defaults.decideTimeoutMs, 100, 60_000);
  const approvalWaitMs = int(c.approvalWaitMs, "approvalWaitMs", Defaults.approvalWaitMs, 0, 3_600_000);
  const pollIntervalMs = int(c.pollIntervalMs, "pollIntervalMs", Defaults.pollIntervalMs, 50, 60_000);
  for (const v of [decideTimeoutMs, approvalWaitMs, pollIntervalMs]) {
    if (typeof v === "string") return { ok: false, error: v };
  }
  const mcpServer = c.mcpServer === undefined ? Defaults.mcpServer : c.mcpServer;
  if (typeof mcpServer !== "string" || !/^[a-z0-9_-]{0,64}$/.test(mcpServer)) {
    return { ok: false, error: "mcpServer must be the name of clawea's MCP server in OpenClaw (a-z 0-9 _ -), or empty for none" };
  }
  const uncoveredRuntime = c.uncoveredRuntime === undefined ? Defaults.uncoveredRuntime : c.uncoveredRuntime;
  if (uncoveredRuntime !== "block" && uncoveredRuntime !== "warn") return { ok: false, error: "uncoveredRuntime must be block or warn" };
  return {
    ok: true,
    settings: {
      server: u.origin + u.pathname.replace(/\/+$/, ""),
      jobId: c.jobId,
      decideTimeoutMs: decideTimeoutMs as number,
      approvalWaitMs: approvalWaitMs as number,
      pollIntervalMs: pollIntervalMs as number,
      mcpServer,
      uncoveredRuntime,
    },
  };
}
