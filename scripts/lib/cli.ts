// What every operator command (key:new, check-config, audit:verify, bench, start, setup) does with its
// arguments: node:util parseArgs, strict and with named options only; --help or -h prints the usage
// and exits 0; anything else it does not know prints the problem and the usage and exits 2.
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/** The option values parseArgs gives for `options` (strict, no positionals). */
export type OptionValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>["values"];

/** Exits with `command: message` on stderr; 2 is the commands' code for a usage error. */
export function fail(command: string, message: string, code = 2): never {
  process.stderr.write(`${command}: ${message}\n`);
  process.exit(code);
}

/** Parses the command line (`args`, default the process's) against `options`, handling --help and mistakes. */
export function parseCommandLine<const O extends ParseArgsOptionsConfig>(
  command: string,
  usage: string,
  options: O,
  args: string[] = process.argv.slice(2),
): OptionValues<O> {
  let parsed: { values: Record<string, unknown> };
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h", default: false } },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    fail(command, `${error instanceof Error ? error.message : String(error)}\n\n${usage}`);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed.values as OptionValues<O>;
}
