/**
 * Boundary validation for messages: text, images and sampling parameters. Errors name the field
 * as the client wrote it, what was expected and what came. Model-specific checks (a resolution
 * the model supports) happen in the engine, which knows the manifest.
 */
import { randomInt } from "node:crypto";
import type { Limits } from "../config.js";
import { AppError } from "../errors.js";
import type { CfgSchedule, PreviewKind } from "../engine/types.js";
import { Task, TurnKind } from "../store/index.js";

export const MAX_SEED = 2 ** 31 - 1;

/** A message's sampling parameters as the client sent them (GraphQL's GenerationParamsInput). */
export interface ParamsInput {
  steps?: number;
  cfg?: number;
  cfgSchedule?: CfgSchedule;
  temperature?: number;
  diffusionSteps?: number;
  seed?: number;
  resolution?: number;
  maxTokens?: number;
  previewMethod?: PreviewKind;
  previewEvery?: number;
  previewSize?: number;
}

type Range = { min: number; max: number; integer: boolean };
const PARAM_RANGES: Record<string, Range> = {
  steps: { min: 1, max: 256, integer: true },
  cfg: { min: 0, max: 30, integer: false },
  temperature: { min: 0.01, max: 5, integer: false },
  diffusionSteps: { min: 1, max: 1000, integer: true },
  seed: { min: 0, max: MAX_SEED, integer: true },
  resolution: { min: 16, max: 4096, integer: true },
  maxTokens: { min: 1, max: 4096, integer: true },
  previewEvery: { min: 1, max: 256, integer: true },
  previewSize: { min: 16, max: 1024, integer: true },
};

/** Plain params object with only the fields the client set, checked against PARAM_RANGES. */
export function validateParams(input: ParamsInput | undefined | null, field = "input.params"): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (input === undefined || input === null) return out;
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    const range = PARAM_RANGES[key];
    if (range !== undefined) {
      const ok = typeof value === "number" && Number.isFinite(value) && value >= range.min && value <= range.max;
      if (!ok || (range.integer && !Number.isInteger(value))) {
        throw AppError.badInput(`${field}.${key}`, `${range.integer ? "an integer" : "a number"} in [${range.min}, ${range.max}]`, value);
      }
    }
    out[key] = value;
  }
  return out;
}

export function validateText(text: string, limits: Limits, field = "input.text"): string {
  if (text.length > limits.maxPromptChars) {
    throw AppError.limit(field, `at most ${limits.maxPromptChars} characters`, `${text.length} characters`);
  }
  return text;
}

export function validateTitle(title: string, field: string): string {
  const trimmed = title.trim();
  if (trimmed.length === 0 || trimmed.length > 200) throw AppError.badInput(field, "1 to 200 characters", title);
  return trimmed;
}

const QUESTION_START = /^(what|what's|how|is|are|was|were|where|which|who|whose|why|when|does|do|did|can|could|describe|count|tell)\b/i;
const EDIT_START = /^(make|remove|delete|erase|add|put|place|move|change|turn|replace|recolou?r|paint|swap|edit|repeat)\b/i;

/** Does the text read as a question about an image (rather than an instruction)? */
export function isQuestion(text: string): boolean {
  const t = text.trim();
  return t.endsWith("?") || QUESTION_START.test(t);
}

/**
 * What the model does for a message. AUTO: an attached image, or an earlier image of the
 * conversation addressed by a question or an edit verb, means understand (question) or edit
 * (instruction); anything else is text-to-image generation.
 */
export function resolveKind(task: Task, text: string, hasAttachedImage: boolean, conversationHasImage: boolean): TurnKind {
  switch (task) {
    case Task.GENERATE:
      return TurnKind.GENERATE;
    case Task.EDIT:
      return TurnKind.EDIT;
    case Task.UNDERSTAND:
      return TurnKind.UNDERSTAND;
    case Task.AUTO: {
      const question = isQuestion(text);
      if (hasAttachedImage) return question ? TurnKind.UNDERSTAND : TurnKind.EDIT;
      if (conversationHasImage && question) return TurnKind.UNDERSTAND;
      if (conversationHasImage && EDIT_START.test(text.trim())) return TurnKind.EDIT;
      return TurnKind.GENERATE;
    }
  }
}

export function randomSeed(): number {
  return randomInt(0, MAX_SEED + 1);
}
