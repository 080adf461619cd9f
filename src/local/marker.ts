// The stand-in's fingerprint: present in every response and bundle of the local entry, and (proven by
// scripts/test/production-bundle.node-test.ts) absent from the production bundle built from src/index.ts.
export const STANDIN_MARKER = "signoff-local-slack-stand-in/not-for-production";
