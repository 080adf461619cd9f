// SPEC 4's error contract, asserted in one place: every refusal is
// `{"error":{"code","message","details":[{path,message}…]}}` with nothing else in it.
import { expect } from "vitest";

export interface ErrorBody {
  error: { code: string; message: string; details: Array<{ path: string; message: string }> };
}

/** Asserts that a parsed body is SPEC 4's error shape exactly (`label` names the request in failures). */
export function expectErrorShape(body: unknown, label?: string): asserts body is ErrorBody {
  expect(body, label).toBeTypeOf("object");
  expect(body, label).not.toBeNull();
  const { error } = body as { error: Record<string, unknown> };
  expect(Object.keys(body as object), label).toEqual(["error"]);
  expect(Object.keys(error).sort(), label).toEqual(["code", "details", "message"]);
  expect(error.code, label).toBeTypeOf("string");
  expect(error.code, label).not.toBe("");
  expect(error.message, label).toBeTypeOf("string");
  expect(error.message, label).not.toBe("");
  expect(Array.isArray(error.details), label).toBe(true);
  for (const detail of error.details as Array<Record<string, unknown>>) {
    expect(detail.path, label).toBeTypeOf("string");
    expect(detail.message, label).toBeTypeOf("string");
  }
}

/**
 * Asserts a refusal: the status, a JSON body of SPEC 4's error shape, and details that name each of
 * `fields` (by its path, or, for an unknown field reported at its parent, in the message).
 */
export async function expectError(res: Response, status: number, fields: readonly string[] = []): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  const body: unknown = JSON.parse(text);
  expectErrorShape(body, text);
  for (const field of fields) {
    const named = body.error.details.some(
      (d) => d.path === field || d.path.startsWith(`${field}.`) || d.message.includes(field),
    );
    expect(named, `details should name ${field}: ${JSON.stringify(body.error.details)}`).toBe(true);
  }
  return body;
}
