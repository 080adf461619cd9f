// `npm run audit:key`: makes the Ed25519 key pair that signs the audit log's chain heads and checkpoints
// (SPEC 12). The private key goes to the Worker only (`wrangler secret put AUDIT_SIGNING_KEY`), never to D1; the
// public key goes to whoever verifies the log (`npm run audit:verify -- --public-key …`).
import { parseArgs } from "node:util";
import { newSigningKey } from "../src/audit/signing.ts";

const USAGE = `Usage: npm run audit:key [-- --json]

  --json   print {"secret", "public_key", "key_id"} as one JSON object instead of the explanation`;

let values: { json?: boolean; help?: boolean };
try {
  ({ values } = parseArgs({
    options: { json: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false } },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  process.stderr.write(`audit:key: ${(error as Error).message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}

const key = await newSigningKey();
if (values.json) {
  process.stdout.write(`${JSON.stringify({ secret: key.secret, public_key: key.publicKey, key_id: key.keyId })}\n`);
} else {
  process.stdout.write(
    [
      "AUDIT_SIGNING_KEY (secret: shown this once; paste it into `npx wrangler secret put AUDIT_SIGNING_KEY`,",
      "or into .dev.vars for a local run):",
      `  ${key.secret}`,
      "",
      `Public key (key id ${key.keyId}), for verifiers: \`npm run audit:verify -- --public-key <it>\``,
      "(it is also in every checkpoint and in `npm run check-config`'s summary):",
      `  ${key.publicKey}`,
      "",
    ].join("\n"),
  );
}
