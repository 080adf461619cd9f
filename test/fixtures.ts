// Constants shared by the vitest config (Node) and the tests (workerd): tokens, secrets, policy.

export const TOKENS = {
  writer: "so_test_writer_token_0000000000000000000000",
  reader: "so_test_reader_token_0000000000000000000000",
  auditor: "so_test_auditor_token_000000000000000000000",
  other: "so_test_other_writer_token_0000000000000000",
} as const;

export const SECRETS = {
  SLACK_SIGNING_SECRET: "test-slack-signing-secret-0123456789",
  SLACK_BOT_TOKEN: "xoxb-test-bot-token",
  // whsec_ + base64 of 24 bytes, as Standard Webhooks secrets are written.
  RUNNER_SECRET: "whsec_cnVubmVyLXNlY3JldC1mb3ItdGVzdHMtMDAwMDAw",
  EVENTS_SECRET: "whsec_ZXZlbnRzLXNlY3JldC1mb3ItdGVzdHMtMDAwMDAw",
  // Ed25519 seeds (whsk_ + base64 of 32 bytes): two for events, as during a rotation, one for the runner.
  EVENTS_SIGNING_KEYS:
    "whsk_GT8OQInmFodmmGQ0pZvlf+rBOY4za1E0IVzcW2cXZl0= whsk_458oJ1XaoaBGqCAzjzJDGWGJXQnF8rNbDX8Fiynn+O0=",
  RUNNER_SIGNING_KEYS: "whsk_gqyjNrflhKduMqo7SwlpjqXDiH6YBCyHNbixuEJxp94=",
} as const;

/** The API_KEYS entries, minus their sha256, which the config computes from TOKENS. */
export const KEY_ENTRIES = [
  {
    token: TOKENS.writer,
    name: "alertmanager",
    scopes: ["proposals:write", "proposals:read", "audit:read"],
    actions: ["k8s.*", "db.failover", "demo.echo"],
    callback_hosts: ["127.0.0.1", "hooks.example.com"],
  },
  { token: TOKENS.reader, name: "dashboard", scopes: ["proposals:read"], actions: ["*"], callback_hosts: [] },
  { token: TOKENS.auditor, name: "auditor", scopes: ["audit:read"], actions: [], callback_hosts: [] },
  {
    token: TOKENS.other,
    name: "ci",
    scopes: ["proposals:write", "proposals:read"],
    actions: ["k8s.rollout_restart"],
    callback_hosts: [],
  },
] as const;

export const POLICY = {
  default_channel: "C0APPROVALS",
  actions: {
    "k8s.rollout_restart": {
      approvers: ["U0ALICE", "S0ONCALL"],
      ttl_seconds: 600,
      max_ttl_seconds: 3600,
      channel: "C0INCIDENT",
      params_schema: {
        type: "object",
        required: ["deployment"],
        properties: { deployment: { type: "string", pattern: "^[a-z0-9-]{1,63}$" } },
        additionalProperties: false,
      },
      escalation: { approvers: ["S0SRELEADS"], channel: "C0ESCALATE", extend_ttl_seconds: 600 },
    },
    "db.failover": {
      approvers: ["U0ALICE", "U0DAVE", "U0ERIN"],
      required_approvals: 2,
      confirm: false,
    },
    "demo.echo": {
      requester_only: true,
      // Who a requester_only proposal may name: a stolen key cannot address an account of its choosing.
      requesters: ["U0BOB", "U0ALICE", "S0ONCALL"],
      ttl_seconds: 30,
    },
  },
} as const;

/** Slack user groups the stand-in Slack API answers for usergroups.users.list. */
export const USERGROUPS: Record<string, string[]> = {
  S0ONCALL: ["U0BOB", "U0OSCAR"],
  S0SRELEADS: ["U0LEAD"],
};

// ---- issue 7: signed links, Teams, verification prompts --------------------------------------------------------

/** In every test Worker's bindings: the link secret (whsec_ + base64 of 30 bytes) and the Worker's public origin. */
export const LINK_BINDINGS = {
  LINK_SECRET: "whsec_bGluay1zZWNyZXQtZm9yLXRlc3RzLTAwMDAwMDAw",
  PUBLIC_URL: "https://signoff.test",
} as const;

/** A key for the issue-7 actions (a SOC tool); only in the env that test/helpers/links.ts builds. */
export const SOC_KEY = {
  token: "so_test_soc_tool_token_00000000000000000000",
  name: "soc",
  scopes: ["proposals:write", "proposals:read", "audit:read"],
  actions: ["verify.*", "links.*"],
  callback_hosts: ["127.0.0.1"],
} as const;

/**
 * Policy actions using links and verification prompts. They are not in POLICY (config tests pin its action list):
 * test/helpers/links.ts adds them, with the loopback peer's address for Teams, to the env its requests carry.
 */
export function linkActions(peer: string) {
  return {
    // "Was this you?" in the user's Slack DM, default labels.
    "verify.login": { kind: "verify", ttl_seconds: 600 },
    // The same question as signed links (for the proposer to send) and on a Teams card, with labels of its own.
    "verify.device": {
      kind: "verify",
      verify_labels: { yes: "Yes, I signed in", no: "No, block it" },
      links: { enabled: true, teams_webhook: `${peer}/teams/verify` },
    },
    // An approval decided in Slack or by link: 2 of U0ALICE, three link recipients and the Teams channel.
    "links.deploy": {
      approvers: ["U0ALICE"],
      required_approvals: 2,
      channel: "C0DEPLOY",
      links: {
        enabled: true,
        recipients: ["alice@example.com", "bob@example.com", "carol+ops@example.com"],
        teams_webhook: `${peer}/teams/approve`,
        teams_recipient: "teams-sre",
      },
    },
    // Decided only through links: no Slack approvers, no card.
    "links.solo": { ttl_seconds: 600, links: { enabled: true, recipients: ["dana@example.com"] } },
    // Links configured but switched off: Slack only.
    "links.quiet": { approvers: ["U0ALICE"], links: { enabled: false, recipients: ["alice@example.com"] } },
  } as const;
}
