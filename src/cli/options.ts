/** A small argv parser: positionals and `--name value` / `--flag`, with errors that name the option. */
import { AppError } from "../errors.js";

export interface Parsed {
  positional: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: string[], flags: readonly string[] = []): Parsed {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    if (arg === "-o") arg = "--out"; // the one short option, as in `generate ... -o out.png`
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq > 0) options.set(name, arg.slice(eq + 1));
    else if (flags.includes(name)) options.set(name, true);
    else if (i + 1 < argv.length) options.set(name, argv[++i]!);
    else throw AppError.badInput(`--${name}`, "a value", "nothing");
  }
  return { positional, options };
}

export function numberOption(p: Parsed, name: string, integer = false): number | undefined {
  const raw = p.options.get(name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw === true || !Number.isFinite(value) || (integer && !Number.isInteger(value))) throw AppError.badInput(`--${name}`, integer ? "an integer" : "a number", raw);
  return value;
}

export function stringOption(p: Parsed, name: string): string | undefined {
  const raw = p.options.get(name);
  if (raw === true) throw AppError.badInput(`--${name}`, "a value", "nothing");
  return raw;
}
