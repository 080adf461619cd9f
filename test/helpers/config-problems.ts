// The details a configuration parser throws: fails the test when it accepts the input or throws anything else.
import { expect } from "vitest";
import { ConfigError } from "../../src/config/problems.ts";
import type { ErrorDetail } from "../../src/errors.ts";

export function problemsOf(parse: () => unknown): ErrorDetail[] {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).details;
  }
  throw new Error("the parser accepted the input");
}
