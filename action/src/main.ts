// The GitHub Action (action.yml): proposes an action to signoff from a workflow step, waits for the decision and
// fails the step unless it was approved (and, when dispatched, succeeded). Idempotent per run, job and step, so a
// re-run of the job waits on the same proposal instead of posting a second card (docs/github-action.md).
import * as core from "@actions/core";
import { parse as parseYaml } from "yaml";
import {
  type Proposal,
  type ProposeBody,
  type SignoffClient,
  SignoffError,
  signoffClient,
} from "../../client/src/client.ts";
import { approversOf, isRefusal, outcomeLines, progressLine, refusalSentence } from "../../client/src/outcome.ts";

type Env = Record<string, string | undefined>;

/** Where the workflow run is: GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/GITHUB_RUN_ID (no attempt). */
export function runUrl(env: Env): string | null {
  const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run } = env;
  return server && repo && run ? `${server}/${repo}/actions/runs/${run}` : null;
}

/**
 * The Idempotency-Key: the repository, the run, the job and the step, and NOT the attempt. "Re-run failed jobs"
 * gives the same run a new GITHUB_RUN_ATTEMPT; leaving it out is what makes the re-run find the proposal the first
 * attempt made (pending: wait on it; decided: the decision stands) instead of posting a second card. Everything
 * else that goes into the body is the same on every attempt too, as the server replays a key only for the same body.
 */
export function idempotencyKey(env: Env): string | null {
  const { GITHUB_REPOSITORY: repo, GITHUB_RUN_ID: run, GITHUB_JOB: job, GITHUB_ACTION: step } = env;
  if (!repo || !run || !job) return null;
  const key = `gha:${repo}:${run}:${job}:${step ?? ""}`.replace(/[^\x21-\x7e]/g, "_");
  return key.slice(0, 255);
}

export interface Inputs {
  url: string;
  token: string;
  action: string;
  params: Record<string, unknown>;
  summary: string;
  reason: string;
  blastRadius: string;
  rollback: string;
  ttlSeconds?: number;
  requestedBy?: string;
  idempotencyKey?: string;
  wait: boolean;
}

/** The step's inputs, checked: a mistake here fails the step before anything is proposed. */
export function readInputs(): Inputs {
  const text = core.getInput("params");
  let params: unknown = {};
  if (text.trim() !== "") {
    try {
      params = parseYaml(text);
    } catch (error) {
      throw new Error(`input params is neither JSON nor YAML: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    throw new Error("input params must be an object of the action's parameters (JSON or YAML)");
  }
  const ttl = core.getInput("ttl-seconds");
  if (ttl !== "" && !/^\d+$/.test(ttl)) throw new Error(`input ttl-seconds must be a whole number, not ${ttl}`);
  const token = core.getInput("token", { required: true });
  core.setSecret(token);
  return {
    url: core.getInput("url", { required: true }),
    token,
    action: core.getInput("action", { required: true }),
    params: params as Record<string, unknown>,
    summary: core.getInput("summary", { required: true }),
    reason: core.getInput("reason"),
    blastRadius: core.getInput("blast-radius", { required: true }),
    rollback: core.getInput("rollback", { required: true }),
    ...(ttl !== "" ? { ttlSeconds: Number(ttl) } : {}),
    ...(core.getInput("requested-by") ? { requestedBy: core.getInput("requested-by") } : {}),
    ...(core.getInput("idempotency-key") ? { idempotencyKey: core.getInput("idempotency-key") } : {}),
    wait: core.getInput("wait") === "" ? true : core.getBooleanInput("wait"),
  };
}

/** The proposal: the inputs, with the reason linking back to the workflow run and the run in metadata. */
export function proposalBody(inputs: Inputs, env: Env): ProposeBody {
  const link = runUrl(env);
  const from = link ? `GitHub Actions run ${link}` : "GitHub Actions";
  const reason = inputs.reason ? `${inputs.reason} (${from})` : `Requested by ${from}`;
  const metadata = Object.fromEntries(
    Object.entries({
      source: "github-action",
      repository: env.GITHUB_REPOSITORY,
      workflow: env.GITHUB_WORKFLOW,
      run_id: env.GITHUB_RUN_ID,
      job: env.GITHUB_JOB,
      ref: env.GITHUB_REF,
      sha: env.GITHUB_SHA,
      actor: env.GITHUB_ACTOR,
      run_url: link ?? undefined,
    }).filter(([, v]) => v !== undefined && v !== ""),
  );
  return {
    action: { type: inputs.action, params: inputs.params },
    summary: inputs.summary,
    reason,
    blast_radius: inputs.blastRadius,
    rollback: inputs.rollback,
    metadata,
    ...(inputs.ttlSeconds !== undefined ? { ttl_seconds: inputs.ttlSeconds } : {}),
    ...(inputs.requestedBy ? { requested_by: inputs.requestedBy } : {}),
  };
}

function setOutputs(p: Proposal): void {
  core.setOutput("proposal-id", p.id);
  core.setOutput("status", p.status);
  core.setOutput("approvers", approversOf(p).join(","));
  core.setOutput("result", p.result?.output ?? "");
}

/** How long the summary waits for the audit log (written to D1 just after each change) to show the outcome. */
const AUDIT_CATCH_UP_MS = 10_000;

/**
 * The audit trail's rows, once D1 shows the proposal's final event (`proposal.<status>`) or after a few seconds;
 * null when the token may not read the audit log (no audit:read).
 */
async function auditRows(client: SignoffClient, p: Proposal): Promise<string[][] | null> {
  const deadline = Date.now() + AUDIT_CATCH_UP_MS;
  for (;;) {
    let events: Awaited<ReturnType<SignoffClient["audit"]>>["events"];
    try {
      events = (await client.audit({ proposal_id: p.id, limit: 1000 })).events;
    } catch (error) {
      if (error instanceof SignoffError && (error.status === 401 || error.status === 403)) return null;
      throw error;
    }
    const complete = p.status === "pending" || events.some((e) => e.type === `proposal.${p.status}`);
    if (complete || Date.now() >= deadline) return events.map((e) => [String(e.idx), e.at, e.type, e.actor]);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function writeSummary(client: SignoffClient, p: Proposal): Promise<void> {
  const summary = core.summary.addHeading(`signoff: ${p.action.type} — ${p.status}`, 2).addTable([
    [
      { data: "Proposal", header: true },
      { data: "Value", header: true },
    ],
    ["id", p.id],
    ["action", p.action.type],
    ["params", `<code>${escapeHtml(JSON.stringify(p.action.params))}</code>`],
    ["summary", escapeHtml(p.summary)],
    ["status", p.status],
    ["approvals", `${p.approvals.length} of ${p.rule.required_approvals}`],
  ]);
  if (p.decision || p.result) summary.addHeading("Decision", 3).addCodeBlock(outcomeLines(p).join("\n"));
  const rows = await auditRows(client, p);
  if (rows) {
    summary.addHeading("Audit trail", 3).addTable([
      [
        { data: "#", header: true },
        { data: "at", header: true },
        { data: "event", header: true },
        { data: "actor", header: true },
      ],
      ...rows,
    ]);
  } else {
    summary.addRaw("The token has no audit:read scope: the audit trail is not shown.", true);
  }
  await summary.write();
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The step: propose, wait (unless wait is false), set the outputs, write the summary, fail unless approved. */
export async function run(env: Env = process.env): Promise<void> {
  try {
    const inputs = readInputs();
    const client = signoffClient({ url: inputs.url, token: inputs.token, userAgent: "signoff-github-action" });
    const key = inputs.idempotencyKey ?? idempotencyKey(env);
    const created = await client.propose(proposalBody(inputs, env), key ?? undefined);
    core.info(`Proposed ${created.id} (${created.action.type}); idempotency key ${key ?? "(none)"}`);
    const { links: _links, ...first } = created;
    let p: Proposal = first;
    if (inputs.wait) {
      let last = "";
      p = await client.waitFor(created.id, {
        first,
        onUpdate: (q) => {
          const line = progressLine(q).replace(/ · [^·]* left$/, "");
          if (line !== last) core.info(progressLine(q));
          last = line;
        },
      });
      for (const line of outcomeLines(p)) core.info(line);
    }
    setOutputs(p);
    await writeSummary(client, p);
    if (isRefusal(p.status)) {
      const sentence = refusalSentence(p);
      core.error(sentence, { title: `signoff: ${p.status}` });
      core.setFailed(sentence);
    }
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error));
  }
}
