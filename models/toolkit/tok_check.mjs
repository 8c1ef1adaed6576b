// Encodes strings with @huggingface/tokenizers (the engine's tokenizer) for the Python tests.
// usage: node tok_check.mjs TOKENIZER_DIR STRINGS.json  -> prints JSON [{ids, decoded}] on stdout
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const dir = process.argv[2];
const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
const cfgPath = join(dir, "tokenizer_config.json");
const config = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
const tok = new Tokenizer(json, config);
const strings = JSON.parse(readFileSync(process.argv[3], "utf8"));
const out = strings.map((s) => {
  const ids = tok.encode(s, { add_special_tokens: true }).ids;
  return { ids, decoded: tok.decode(ids, { skip_special_tokens: false }) };
});
process.stdout.write(JSON.stringify(out));
