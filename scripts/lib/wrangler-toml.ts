// Edits of wrangler.toml that keep everything else of it as it was — comments, order, spacing — which a TOML
// parser and writer would not: `npm run setup` changes one value in a file people read and edit by hand.

/** The table a header line opens (`[vars]`, `[[d1_databases]]`, `[env.local.vars]`), or null for any other line. */
function header(line: string): string | null {
  return /^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/.exec(line)?.[1] ?? null;
}

/** Lines that open or close a multi-line string toggle it; header-like lines inside one (POLICY's JSON) are text. */
function togglesMultiline(line: string): boolean {
  const count = (line.match(/'''|"""/g) ?? []).length;
  return count % 2 === 1;
}

/**
 * `text` with the `database_id` of the top-level `[[d1_databases]]` block whose `binding` is `binding` set to `id`;
 * blocks of environments (`[[env.local.d1_databases]]`) and every other line are left byte for byte. Throws when
 * there is no such block, so that nothing is written to a file that would not work.
 */
export function setDatabaseId(text: string, binding: string, id: string): string {
  if (!/^[0-9a-f-]{36}$/.test(id)) throw new Error(`${JSON.stringify(id)} is not a D1 database id`);
  const lines = text.split("\n");
  let inMultiline = false;
  // Start and end (exclusive) of each top-level [[d1_databases]] block.
  const blocks: Array<{ start: number; end: number }> = [];
  for (const [i, line] of lines.entries()) {
    if (inMultiline) {
      if (togglesMultiline(line)) inMultiline = false;
      continue;
    }
    if (togglesMultiline(line)) {
      inMultiline = true;
      continue;
    }
    const table = header(line);
    if (table === null) continue;
    const open = blocks.at(-1);
    if (open && open.end === -1) open.end = i;
    if (table === "d1_databases" && line.trimStart().startsWith("[[")) blocks.push({ start: i, end: -1 });
  }
  const last = blocks.at(-1);
  if (last && last.end === -1) last.end = lines.length;

  const bindingLine = new RegExp(`^\\s*binding\\s*=\\s*["']${binding.replace(/[^A-Za-z0-9_]/g, "")}["']\\s*(#.*)?$`);
  const block = blocks.find(({ start, end }) => lines.slice(start + 1, end).some((line) => bindingLine.test(line)));
  if (!block) throw new Error(`no top-level [[d1_databases]] block with binding = "${binding}"`);
  const idLine = lines.findIndex((line, i) => i > block.start && i < block.end && /^\s*database_id\s*=/.test(line));
  if (idLine >= 0) {
    lines[idLine] = lines[idLine]!.replace(/^(\s*database_id\s*=\s*)(["'])[^"']*\2/, `$1"${id}"`);
  } else {
    // No database_id line yet: one after the binding's name, where `wrangler d1 create` would print it.
    const nameLine = lines.findIndex(
      (line, i) => i > block.start && i < block.end && /^\s*database_name\s*=/.test(line),
    );
    const after = nameLine >= 0 ? nameLine : block.start;
    lines.splice(after + 1, 0, `database_id = "${id}"`);
  }
  return lines.join("\n");
}
