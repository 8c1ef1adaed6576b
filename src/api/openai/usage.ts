/**
 * Token counts for OpenAI's `usage` fields, from the model's own tokenizer and prompt templates
 * (the manifest), so they count what the model actually read and wrote. The tokenizer is loaded
 * once per manifest, on first use.
 */
import type { Manifest } from "../../engine/manifest.js";
import { loadTokenizer, type ChatTokenizer } from "../../engine/tokenizer.js";
import type { HistoryTurn } from "../../engine/types.js";

const tokenizers = new WeakMap<Manifest, Promise<ChatTokenizer>>();

function tokenizerOf(manifest: Manifest): Promise<ChatTokenizer> {
  let found = tokenizers.get(manifest);
  if (found === undefined) {
    found = loadTokenizer(manifest);
    tokenizers.set(manifest, found);
  }
  return found;
}

export interface ImageUsage {
  input_tokens: number;
  input_tokens_details: { image_tokens: number; text_tokens: number };
  output_tokens: number;
  total_tokens: number;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

function resolutionOf(manifest: Manifest, size: number) {
  return manifest.resolutions.find((r) => r.size === size) ?? manifest.resolutions[0]!;
}

/** One image: the framed prompt in (with the source image's tokens for an edit), the image's tokens out. */
export async function imageUsage(manifest: Manifest, kind: "generate" | "edit", prompt: string, size: number): Promise<ImageUsage> {
  const tok = await tokenizerOf(manifest);
  const res = resolutionOf(manifest, size);
  const { prompts } = manifest;
  const imageTokens = kind === "edit" ? res.imagePromptTokens : 0;
  const text =
    kind === "edit"
      ? prompts.editPositive.replace("{image}", tok.imageText(res.imagePromptTokens)).replace("{instruction}", prompt)
      : prompts.t2iPositive.replace("{prompt}", prompt);
  const input = tok.chat(text).length;
  return {
    input_tokens: input,
    input_tokens_details: { image_tokens: imageTokens, text_tokens: input - imageTokens },
    output_tokens: res.tokens,
    total_tokens: input + res.tokens,
  };
}

/** Several images of one request, added up. */
export function sumImageUsage(all: ImageUsage[]): ImageUsage {
  const sum = (f: (u: ImageUsage) => number): number => all.reduce((n, u) => n + f(u), 0);
  return {
    input_tokens: sum((u) => u.input_tokens),
    input_tokens_details: { image_tokens: sum((u) => u.input_tokens_details.image_tokens), text_tokens: sum((u) => u.input_tokens_details.text_tokens) },
    output_tokens: sum((u) => u.output_tokens),
    total_tokens: sum((u) => u.total_tokens),
  };
}

/** An understanding turn: the question with its image and history in, the answer's tokens out. */
export async function chatUsage(manifest: Manifest, question: string, history: HistoryTurn[], answer: string): Promise<ChatUsage> {
  const tok = await tokenizerOf(manifest);
  const res = resolutionOf(manifest, manifest.defaultResolution);
  const prompt = tok.chat(manifest.prompts.understand.replace("{image}", tok.imageText(res.imagePromptTokens)).replace("{question}", question), history).length;
  // The answer's own tokens: the framing around it is the same with and without it.
  const completion = answer.length === 0 ? 0 : tok.chat(answer).length - tok.chat("").length;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
