// People and groups the bench's stand-in Slack knows, matching wrangler.toml's production POLICY
// (k8s.rollout_restart: U0ALICE or anyone in S0ONCALL approves; U0BOB, the requester, may not).

/** Approves directly (listed in the policy). */
export const ALICE = "U0ALICE";
/** Approves through the S0ONCALL group (a usergroups.users.list lookup, cached ≤ 5 min). */
export const OSCAR = "U0OSCAR";
/** The requester of every bench proposal: four-eyes refuses his own approval. */
export const BOB = "U0BOB";
/** Nobody the policy names. */
export const MALLORY = "U0MALLORY";

/** A realistic on-call group: the members the bench clicks as, plus 40 more. */
export const BENCH_USERGROUPS: Record<string, string[]> = {
  S0ONCALL: [BOB, OSCAR, ...Array.from({ length: 40 }, (_, i) => `U0SRE${String(i).padStart(3, "0")}`)],
};

export const BENCH_KEY_NAME = "bench";
