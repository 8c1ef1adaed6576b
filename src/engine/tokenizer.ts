/**
 * Text <-> token ids through the model's tokenizer.json (Hugging Face format) with the maintained
 * @huggingface/tokenizers library, loaded from local files only. Chat framing and special ids
 * come from the manifest (Qwen's template without a system turn, docs/model.md §3.1 and 6).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { AppError, ErrorCode } from "../errors.js";
import type { Manifest } from "./manifest.js";
import type { HistoryTurn } from "./types.js";

export interface ChatTokenizer {
  /**
   * Ids of a user turn wrapped as `<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n`,
   * after the earlier turns of the conversation, if any (no system turn, docs/model.md §6).
   */
  chat(userText: string, history?: readonly HistoryTurn[]): number[];
  /** `count` image placeholder tokens as text (they become proj_in rows in the prompt). */
  imageText(count: number): string;
  decode(ids: readonly number[]): string;
  readonly eosId: number;
  readonly padId: number;
  readonly imageTokenId: number;
}

export async function loadTokenizer(manifest: Manifest): Promise<ChatTokenizer> {
  const file = path.join(manifest.dir, manifest.tokenizer.file);
  let tokenizer: Tokenizer;
  try {
    const json = JSON.parse(await readFile(file, "utf8")) as object;
    const config = manifest.tokenizer.configFile === null ? {} : (JSON.parse(await readFile(path.join(manifest.dir, manifest.tokenizer.configFile), "utf8")) as object);
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    throw new AppError(ErrorCode.MODEL_INVALID, `${file}: cannot load the tokenizer: ${(error as Error).message}`, { cause: error });
  }
  const { prompts } = manifest;
  const { eosId, padId, imageTokenId } = manifest.tokenizer;
  if (tokenizer.token_to_id(prompts.imageToken) !== imageTokenId) {
    throw new AppError(ErrorCode.MODEL_INVALID, `${file}: the image token ${prompts.imageToken} is not id ${imageTokenId} as the manifest says`);
  }
  // The manifest gives the user prefix and the assistant prefix (which closes the user turn). A
  // turn's end is the part of the assistant prefix before its role header, whose opening marker
  // is the user prefix's (Qwen: "<|im_end|>\n" before "<|im_start|>").
  const marker = prompts.userPrefix.slice(0, Math.max(1, prompts.userPrefix.search(/[a-z]/)));
  const turnEnd = prompts.assistantPrefix.slice(0, Math.max(0, prompts.assistantPrefix.indexOf(marker)));
  const render = (userText: string, history: readonly HistoryTurn[]): string => {
    let text = "";
    for (const turn of history) text += turn.role === "user" ? `${prompts.userPrefix}${turn.text}${prompts.assistantPrefix}` : `${turn.text}${turnEnd}`;
    // Two user turns in a row (an unanswered message) are closed the same way.
    if (history.length > 0 && history.at(-1)!.role === "user") text += turnEnd;
    return `${text}${prompts.userPrefix}${userText}${prompts.assistantPrefix}`;
  };
  return {
    chat: (userText, history = []) => tokenizer.encode(render(userText, history), { add_special_tokens: true }).ids,
    imageText: (count) => prompts.imageToken.repeat(count),
    decode: (ids) => tokenizer.decode([...ids], { skip_special_tokens: true }),
    eosId,
    padId,
    imageTokenId,
  };
}
