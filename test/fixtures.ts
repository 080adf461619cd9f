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
  // auditsk_ + base64 of an Ed25519 private key (32 bytes): signs audit chain heads and checkpoints.
  AUDIT_SIGNING_KEY: "auditsk_9MtAcTMdnTX2eeVdvDOLofU/Mv2MU2XDMGaio16VqJo=",
} as const;

/** The public half of SECRETS.AUDIT_SIGNING_KEY: all a verifier of the audit log holds. */
export const AUDIT_PUBLIC_KEY = "auditpk_mAQs9BKUrChWGQanekNB8g5ofch7F8Y2293U7OoQZdY=";
/** Another key pair: what a checkpoint or head signed by someone else would carry. */
export const OTHER_AUDIT_SIGNING_KEY = "auditsk_pl/VHbn8HNBC2kW3zqJCSZF9d6owp1Ug9NFmoKN4E1k=";
export const OTHER_AUDIT_PUBLIC_KEY = "auditpk_K6gM1PuqhkVI/wZaLxEIl0wT1hctmz4ykI8ljqhlSjc=";

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
      // Who a requester_only proposal may name: a stolen key cannot address an account of its choosing. S0REQUESTERS
      // serves nothing else, so api-contract.test.ts finds it out of the group cache when Slack is down.
      requesters: ["U0BOB", "U0ALICE", "S0ONCALL", "S0REQUESTERS"],
      ttl_seconds: 30,
    },
  },
  // The Alertmanager receiver's routes (docs/alertmanager.md): the first an alert's labels match decides.
  adapters: {
    alertmanager: {
      routes: [
        {
          match: { alertname: "KubePodOOMKilled", severity: "critical" },
          action: "k8s.rollout_restart",
          params: { deployment: "{{ labels.deployment }}" },
          summary: "Restart deployment {{ labels.deployment }} (rolling)",
          rollback: "kubectl rollout undo deployment/{{ labels.deployment }}",
        },
        {
          match_re: { alertname: "Postgres(Primary|Replica)Down" },
          action: "db.failover",
          params: { cluster: "{{ labels.cluster }}" },
          summary: "Fail over {{ labels.cluster }}",
          reason: "{{ annotations.description }} ({{ generatorURL }})",
          blast_radius: "writes to {{ labels.cluster }} pause for about 30 s",
          rollback: "fail back once the old primary is healthy",
          ttl_seconds: 900,
        },
      ],
    },
  },
} as const;

/** Slack user groups the stand-in Slack API answers for usergroups.users.list. */
export const USERGROUPS: Record<string, string[]> = {
  S0ONCALL: ["U0BOB", "U0OSCAR"],
  S0SRELEADS: ["U0LEAD"],
  S0REQUESTERS: ["U0RITA"],
};

/** signoff's own workspace (SLACK_TEAM_ID); users.info puts every user in it except those below. */
export const SLACK_TEAM_ID = "T0SIGNOFF";
/** What users.info says of the accounts that may not decide (a guest, a Slack Connect peer's member), and of alice. */
export const SLACK_ACCOUNTS: Record<string, { team_id?: string; is_restricted?: boolean; tz?: string }> = {
  // Her time zone, as users.info gives it: the Home tab shows her deadlines in it (issue 16).
  U0ALICE: { tz: "Europe/Berlin" },
  U0GUEST: { is_restricted: true },
  U0EXTERNAL: { team_id: "T0OTHERCO" },
};

/**
 * The stand-in for Cloudflare Access (issue 11): the loopback peer is the team domain and serves this key's public
 * half at /cdn-cgi/access/certs; tests sign application tokens with it (RS256, as Access does).
 */
export const ACCESS_AUD = "signoff-test-access-aud-0000000000000000";
export const ACCESS_PRIVATE_JWK = {
  kty: "RSA",
  n: "8GyOtRY7l0t9wrrRfN5xNQ_wZFbG5OIPhgoDENn-0RZ4UbajmEQ4jcL6PvqleLpccx9OuGCFDu-wd238j0d6vw2OZFok1eSJf26csX2tzFdfx4td6upjWV-769BWp0e4c0rrNOBtgiThjhk0ZUnyHgsOx6fHg2YHa0djpn84-g4pQGxrdepVcs6e8o2zkGrQfWvek6Kn2_NPUL4_cj5x-HRpJyZH78dC5o-LoRhivYUCUgiSvmKSBW_Tv5S7AvY2p4u8wnMy3NsyzfqMQ0czN_mOxkcbCjL7cDqKNyfVFiFGPVLlKwHxeOdrTn0ccnQVNcnHbAwzmcWiEJXDmBLK6w",
  e: "AQAB",
  d: "BTs3d7U-IrKfz-bkvATTDcaFAono1f4dPFtnaax0oPQONij1MlD5sgv2CfzGMPRNIqwhuF1RR9vrSQ35mtyBTTrsSD614nmQjFdJzYrghzu3d84OgxgKhV1R53WnDQjAeLG-oG3ptBU9WywtOa78N68h6TI7Yx6LNshc4LiP8tDlRAfLhvOhyOW6V6t1VzI9--Oq-vYe-Cr9yWz2dNpKhaCVwigCOK8ZsFV3-GEh6bEJH16u9JUKXOdNyHyYtnVqmISKZrvi4wyE0nBptlV92quh8z2-8UD21kOnzwzoOFVz1vbX0M8xakRcYj2N3nqvcw4mWtLr0IlKIYUnp-tZwQ",
  p: "_suT3KH7qhRpZUJ-tJ6Oa7znhl_2ZW1w2vhHtmzPV9MnLENk1Kphx7Mt9dbQIMX4s2TrdQTJ14lvT-UBPVc6ktsyoaw5S0uk0RG42fV0FLB52DWbTSBCJy3U_l17W0Wdln0ncY62UM3mIjO_w-VgY4JWPua7X4Jh0FmZx-Z6_LE",
  q: "8Y-VfuVRRmG23YVeKemtgXO-WpoplD4Lnkd0Cwd0PbS4s_W_8j_F_25qgbX6SsuS--nqyo7e7o5fif7FisQf-8bCJDF2StrscQCc3fk7kWUfYJif7EDYwbo6zoGUMRB7waDPZU-jMdHSfiKmWOd1AiyFl20H09Roud9TYRxoeFs",
  dp: "mfAO_m7TKJe6cZYyDRf6ffccfl_98pujYng8g2fMAYiuEx0Ijz_9YXTM4MmO5y4UqvXfF8zz0YfUO5XlINVRqyZJucnet7IU-sdVQkH8hv90Lf99O6SwsxEKrT93ZtZxdllY-k-5sKolTyaqxkUP7i7xwoEOVY7lX8aylUaXqZE",
  dq: "uqQzYSm0A4qKbVyX5hB8lBInGQAWckkCVxhkbAUlZmwVbk7KMVXfGT5qIrDFpDbo6aXSWRHM5EuzO_9TCKYDBFmNNcPV336Jw8IycjwZL30PomYq4rM0B3Np7pcmNkbDKFelB2Vh9aNmXTlOiFDGEpjt25NNwflTtZH9bYIyohM",
  qi: "LN8eG2NaRfRd0ofyhw85OHNrCK4mN3NFu-70ppShAv2zp6440Mtwiu0pMxAsqrzz6KbVl4A_z55czIuG0T05u-cryyzXv9r1ogsQpqNka-BjXq_pZfy2H7WsIgsCC3tJKuQ5nfwnHsJJ-uKd13DrdSvNuDtbB0tb2_HMsdk8quA",
  kid: "signoff-test-access",
  alg: "RS256",
} as const;
/** The mail API's path on the loopback peer, and the sender. */
export const MAIL_PATH = "/mail/emails";
export const MAIL_FROM = "signoff <signoff@example.com>";
export const MAIL_API_TOKEN = "re_test_mail_token_000000000000";

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
    // The same question as signed links, for the proposer to send to the addressee alone (never to a Teams channel:
    // they answer by possession), with labels of its own.
    "verify.device": {
      kind: "verify",
      verify_labels: { yes: "Yes, I signed in", no: "No, block it" },
      links: { enabled: true },
    },
    // An approval decided in Slack or by link: 2 of U0ALICE, three link recipients (mailed their links) and the Teams
    // card's links (for whichever recipient signs in).
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
    // Two of three, escalating to a list that shares an approver (issue 11: the escalator must not decide alone).
    "links.escalating": {
      approvers: ["U0ALICE", "U0DAVE", "U0ERIN"],
      required_approvals: 2,
      channel: "C0DEPLOY",
      escalation: { approvers: ["U0ALICE", "U0LEAD"], channel: "C0ESCALATE" },
    },
    // Links configured but switched off: Slack only.
    "links.quiet": { approvers: ["U0ALICE"], links: { enabled: false, recipients: ["alice@example.com"] } },
    // Not requester_only, yet only these may be named as requested_by (no links: "links." is the SOC key's pattern).
    "links.gated": { approvers: ["U0ALICE"], channel: "C0DEPLOY", requesters: ["U0BOB", "S0ONCALL"] },
  } as const;
}

/**
 * The link env's `people` directory: alice's Slack account and e-mail are one person, who counts once whichever she
 * uses (SPEC 12).
 */
export const PEOPLE = { alice: ["U0ALICE", "alice@example.com"] } as const;

// ---- issue 17: risk rules, change freezes, break-glass -----------------------------------------------------------

/**
 * Actions with risk rules (not in POLICY, which config tests pin): test/helpers/policy-env.ts adds them to the env
 * its create requests carry; the writer key proposes them through its `k8s.*` pattern.
 */
export const RISK_ACTIONS = {
  // Scale a deployment: more than 50 replicas is the SRE leads' call alone, within 5 minutes; more than 10 needs two.
  "k8s.scale": {
    approvers: ["U0ALICE", "U0DAVE", "S0ONCALL", "S0SRELEADS"],
    channel: "C0INCIDENT",
    params_schema: {
      type: "object",
      required: ["deployment", "replicas"],
      properties: { deployment: { type: "string" }, replicas: { type: "integer", minimum: 0 } },
      additionalProperties: false,
    },
    rules: [
      { when: "params.replicas > 50", label: "replicas > 50", approvers: ["S0SRELEADS"], ttl_seconds: 300 },
      { when: "params.replicas > 10", label: "replicas > 10", required_approvals: 2 },
    ],
  },
} as const;

/**
 * An action with break-glass (test/helpers/policy-env.ts adds it like RISK_ACTIONS): two of alice and dave decide
 * normally; lead, alice or bob may approve alone with a reason, in a freeze or not.
 */
export const BREAK_GLASS_ACTIONS = {
  "k8s.hotfix": {
    approvers: ["U0ALICE", "U0DAVE"],
    required_approvals: 2,
    channel: "C0INCIDENT",
    escalation: { approvers: ["S0SRELEADS"], channel: "C0ESCALATE" },
    break_glass: { approvers: ["U0LEAD", "U0ALICE", "U0BOB"], reason_required: true },
  },
} as const;

/**
 * An action approvers may edit before approving (test/helpers/policy-env.ts adds it like RISK_ACTIONS): alice, dave
 * or lead decide; replicas and note may be edited, replicas to at most 30; more than 20 replicas needs two approvals.
 */
export const EDIT_ACTIONS = {
  "k8s.resize": {
    approvers: ["U0ALICE", "U0DAVE", "U0LEAD"],
    channel: "C0INCIDENT",
    params_schema: {
      type: "object",
      required: ["deployment", "replicas"],
      properties: {
        deployment: { type: "string" },
        replicas: { type: "integer", minimum: 0 },
        note: { type: "string" },
      },
      additionalProperties: false,
    },
    editable_params: ["replicas", "note"],
    edit_schema: { properties: { replicas: { maximum: 30 } } },
    rules: [{ when: "params.replicas > 20", label: "replicas > 20", required_approvals: 2 }],
  },
} as const;
