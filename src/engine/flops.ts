/**
 * FLOPs of one graph call from its shapes and the manifest's `flops` coefficients (issue 13,
 * item 4: the bench's flops_utilisation). The formulas per role are those of
 * models/toolkit/flops.py and models/README.md; matrix products and convolutions only.
 */
import type { FlopsTable, Role } from "./manifest.js";

/** The shapes of one call: rows B (or N), and the lengths the role's formula uses. */
export type CallShape =
  | { role: "mar_encoder"; B: number; S: number }
  | { role: "llm"; B: number; T: number; P: number }
  | { role: "mar_fill"; B: number; S: number }
  | { role: "mar_decoder"; B: number; V: number; buf: number; S: number }
  | { role: "diffusion_head"; N: number }
  | { role: "vae_encoder" | "vae_decoder"; B: number; tokens: number };

/** FLOPs of the call, or 0 when the table has no entry for its role. */
export function callFlops(table: FlopsTable, call: CallShape): number {
  const c = table[call.role as Role] ?? {};
  const token = c.token ?? 0;
  const pair = c.pair ?? 0;
  const row = c.row ?? 0;
  switch (call.role) {
    case "mar_encoder":
    case "mar_fill":
      return call.B * (token * call.S + pair * call.S * call.S);
    case "llm":
      return call.B * (token * call.T + pair * call.T * (call.P + call.T) + row);
    case "mar_decoder":
      return call.B * ((c.llm_token ?? 0) * (call.V + call.buf) + token * call.S + pair * call.S * call.S);
    case "diffusion_head":
      return call.N * row;
    case "vae_encoder":
    case "vae_decoder":
      return call.B * (token * call.tokens + pair * call.tokens * call.tokens);
  }
}
