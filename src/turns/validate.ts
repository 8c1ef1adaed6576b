/**
 * Boundary validation for messages: text, titles, and what AUTO means for a message. Errors name
 * the field as the client wrote it, what was expected and what came. Sampling parameters are
 * checked in params.ts, by the engine's table.
 */
import { randomInt } from "node:crypto";
import type { Limits } from "../config.js";
import { AppError } from "../errors.js";
import { MAX_SEED } from "../engine/params.js";
import { Task, TurnKind } from "../store/index.js";

export { MAX_SEED };

export function validateText(text: string, limits: Limits, field = "input.text"): string {
  if (text.length > limits.maxPromptChars) {
    throw AppError.limit(field, `at most ${limits.maxPromptChars} characters`, `${text.length} characters`);
  }
  return withoutNul(text, field);
}

export function validateTitle(title: string, field: string): string {
  const trimmed = title.trim();
  if (trimmed.length === 0 || trimmed.length > 200) throw AppError.badInput(field, "1 to 200 characters", title);
  return withoutNul(trimmed, field);
}

/** PostgreSQL text cannot hold U+0000 (the server refuses the row), so it is refused here, by name. */
function withoutNul(text: string, field: string): string {
  const at = text.indexOf("\u0000");
  if (at >= 0) throw AppError.badInput(field, "text without NUL (U+0000) characters", `NUL at character ${at}`);
  return text;
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
