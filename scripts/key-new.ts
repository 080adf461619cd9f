// `npm run key:new -- --name alertmanager --actions 'k8s.*' …`: mints a proposer API key, prints the token once and
// the API_KEYS entry that stores only its SHA-256 (SPEC 3).
import { newApiKey, SCOPES } from "../src/config/api-keys.ts";
import { ConfigError } from "../src/config/problems.ts";
import { fail, parseCommandLine } from "./lib/cli.ts";

const COMMAND = "key:new";

const USAGE = `Usage: npm run key:new -- --name NAME --actions PATTERNS [--scopes SCOPES] [--callback-hosts HOSTS] [--json]

  --name            key name, shown in the audit log as key:NAME
  --actions         comma-separated action types the key may propose: exact names, prefix.* or *
  --scopes          comma-separated, default proposals:write,proposals:read (all: ${SCOPES.join(",")})
  --callback-hosts  comma-separated hosts its proposals may name in callback_url
  --json            print {"token", "entry"} as one JSON object instead of the explanation`;

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

const values = parseCommandLine(COMMAND, USAGE, {
  name: { type: "string" },
  actions: { type: "string" },
  scopes: { type: "string", default: "proposals:write,proposals:read" },
  "callback-hosts": { type: "string", default: "" },
  json: { type: "boolean", default: false },
});

if (!values.name) fail(COMMAND, `--name is required\n\n${USAGE}`);
const scopes = list(values.scopes);
const actions = list(values.actions);
const callbackHosts = list(values["callback-hosts"]);
const proposes = scopes.some((s) => s.startsWith("proposals:"));
// Audit-only keys need no actions; a proposer key must say which, so that `*` is a choice and not an accident.
if (proposes && values.actions === undefined) {
  fail(COMMAND, `--actions is required for a key with proposals:* scopes (exact names, prefix.* or *)\n\n${USAGE}`);
}

let minted: Awaited<ReturnType<typeof newApiKey>>;
try {
  minted = await newApiKey(values.name, scopes, actions, callbackHosts);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  const lines = error.details.map(
    (d) =>
      `  --${d.path
        .replace(/^key\./, "")
        .replace(/\[\d+\]$/, "")
        .replace("callback_hosts", "callback-hosts")}: ${d.message}`,
  );
  fail(COMMAND, `the key is not valid:\n${lines.join("\n")}`);
}

const { token, entry } = minted;
if (actions.includes("*")) {
  process.stderr.write(
    "key:new: warning: --actions '*' lets this key propose every action type in the policy, now and later\n",
  );
}
if (values.json) {
  process.stdout.write(`${JSON.stringify({ token, entry })}\n`);
} else {
  process.stdout.write(
    [
      `Token for "${entry.name}" (shown only now; signoff keeps just its SHA-256 — store it in the proposer's secret store):`,
      "",
      `  ${token}`,
      "",
      "API_KEYS entry:",
      "",
      `  ${JSON.stringify(entry)}`,
      "",
      "Add the entry to the JSON array in the API_KEYS secret, then set the whole array again:",
      "  wrangler secret put API_KEYS        (paste the array, e.g. [{…existing…}, {…this entry…}])",
      "Locally, add it to API_KEYS in .dev.vars. Check with: npm run check-config",
      "",
    ].join("\n"),
  );
}
