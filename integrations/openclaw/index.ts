// The clawea OpenClaw plugin: a trusted tool policy that asks clawea
// (POST /v1/decide) before every tool call and records the outcome after
// it (POST /v1/decide/{id}/result). See README.md.

import { register } from "./src/plugin.ts";

export default {
  id: "clawea",
  name: "clawea",
  description: "Ask clawea before every tool call (deny blocks, approvals wait) and record the outcome as a signed receipt.",
  register,
};
