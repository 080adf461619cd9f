// `npm run signing-key:new`: mints an Ed25519 key for Standard Webhooks `v1a` signatures (EVENTS_SIGNING_KEYS or
// RUNNER_SIGNING_KEYS), prints the secret once and the public key and id that GET /v1/keys will show for it.
import { importSigningKey, newSigningKey } from "../src/webhooks/signing-keys.ts";

if (process.argv.slice(2).some((arg) => arg === "--help" || arg === "-h")) {
  process.stdout.write("Usage: npm run signing-key:new [-- --json]\n");
  process.exit(0);
}
const secretKey = newSigningKey();
const { kid, publicKey } = await importSigningKey(secretKey);
if (process.argv.includes("--json")) {
  process.stdout.write(`${JSON.stringify({ secret_key: secretKey, public_key: publicKey, kid })}\n`);
} else {
  process.stdout.write(`Secret key (shown once; store it as a secret, never in wrangler.toml):
  ${secretKey}

Public key (what GET /v1/keys publishes; safe to share):
  ${publicKey}   ${kid}

To sign outcome events with it (to rotate, list the new key first and keep the old one until listeners refetch):
  npx wrangler secret put EVENTS_SIGNING_KEYS     # paste: ${"<new key> [<old key>]"}
`);
}
