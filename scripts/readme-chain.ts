/**
 * The README's conversation through the engine, over many seeds (the model card's "end to end"
 * figure): "a red circle", then "make the circle blue" of that image, then "what color is the
 * circle?" about the edit, each turn with the same seed and the manifest's defaults. A turn
 * passes when the ShapesWorld detector finds exactly one circle of the right colour (the answer:
 * when it says "blue"); a failed turn ends that seed's chain. Prints one JSON line.
 *
 *     MODEL_DIR=models/unipic-tiny npx tsx scripts/readme-chain.ts [SEEDS=40]
 */
import { loadEngine } from "../src/cli/engine.js";
import { final } from "../src/cli/eval.js";
import { loadConfig } from "../src/config.js";
import type { RgbTensor } from "../src/engine/types.js";
import { detect } from "../src/shapes/detect.js";

const oneCircle = (image: RgbTensor, color: string): boolean => {
  const found = detect(image.rgb, image.width);
  return found.length === 1 && found[0]!.shape === "circle" && found[0]!.color === color;
};

const engine = await loadEngine(loadConfig());
const seeds = Number(process.argv[2] ?? 40);
const passed = { red_circle: 0, then_blue: 0, answer_blue: 0 };
const passing: number[] = [];
for (let seed = 1; seed <= seeds; seed++) {
  const drawn = (await final(engine, { kind: "generate", prompt: "a red circle", params: { seed } })).image!;
  if (!oneCircle(drawn, "red")) continue;
  passed.red_circle++;
  const edited = (await final(engine, { kind: "edit", image: drawn, instruction: "make the circle blue", params: { seed } })).image!;
  if (!oneCircle(edited, "blue")) continue;
  passed.then_blue++;
  const answer = (await final(engine, { kind: "understand", image: edited, question: "what color is the circle?", history: [], params: {} })).text ?? "";
  if (!/blue/.test(answer)) continue;
  passed.answer_blue++;
  passing.push(seed);
}
console.log(JSON.stringify({ seeds, red_circle: passed.red_circle / seeds, then_blue: passed.then_blue / seeds, answer_blue: passed.answer_blue / seeds, passing }));
await engine.close();
