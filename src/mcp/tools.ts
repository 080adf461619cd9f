// The MCP server's four tools, for AI agents: list what the key may propose, propose (optionally waiting for the
// decision), read a proposal (optionally waiting), cancel one's own. Each is a door onto the same functions as the
// HTTP API (actionsFor, propose, the proposal's stub); none can approve, deny or escalate, whatever its arguments.
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { CfWorkerJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/cfworker";
import { z } from "zod";
import pkg from "../../package.json";
import { actionsFor } from "../api/actions.ts";
import type { Proposer } from "../api/propose.ts";
import { propose } from "../api/propose.ts";
import { hasScope, type Scope } from "../config/api-keys.ts";
import { ApiError, toApiError } from "../errors.ts";
import { isTerminal } from "../proposal/lifecycle.ts";
import { proposalStub } from "../proposal/stub.ts";
import type { Proposal } from "../proposal/types.ts";
import type { ProposalView } from "../proposal/view.ts";

/** The tools, in the order tools/list shows them: the whole of what an agent can do here. */
export const TOOL_NAMES = ["list_actions", "propose_action", "get_proposal", "cancel_proposal"] as const;

/** As GET /v1/proposals/:id?wait=: an agent holds at most a minute per call, then asks again. */
export const MAX_WAIT_SECONDS = 60;
/** While it waits, a progress notification at least this often (and at every change). */
const PROGRESS_EVERY_SECONDS = 10;

type ToolResult = {
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: true;
};

const waitSeconds = z
  .int()
  .min(0)
  .max(MAX_WAIT_SECONDS)
  .optional()
  .describe(
    `hold up to this many seconds (at most ${MAX_WAIT_SECONDS}) until the status changes, as a person decides; ` +
      "with a progressToken, progress notifications report the status, approvals so far and time left. " +
      "Still pending afterwards: call get_proposal with wait_seconds again",
  );

const proposalId = z
  .string()
  .regex(/^prp_[0-9a-f]{64}$/, "must be a proposal id (prp_ and 64 hex digits)")
  .describe("the id propose_action returned");

const proposeShape = {
  action: z
    .object({
      type: z.string().describe("an action type list_actions returned"),
      params: z
        .record(z.string(), z.unknown())
        .optional()
        .describe("the parameters, satisfying that action's params_schema; shown whole on the card"),
    })
    .describe("what to run, exactly: the runner executes this and nothing else once approved"),
  summary: z.string().describe("one line a person reads first: what will happen (at most 300 characters)"),
  reason: z.string().describe("why now: the evidence (alert, error, metric) that makes this the right action"),
  blast_radius: z
    .string()
    .describe(
      "what it touches and what could break if it goes wrong: which systems, environments, how many users or " +
        "replicas, any downtime. Be concrete; the approver decides on this",
    ),
  rollback: z
    .string()
    .describe(
      "how to undo it if it goes wrong: the exact command or steps, and how long it takes; say so plainly if it " +
        "cannot be undone",
    ),
  requested_by: z
    .string()
    .optional()
    .describe("the Slack user id (U…) of the person on whose behalf you act, when you know it"),
  ttl_seconds: z.int().optional().describe("how long people have to decide; the action's default when left out"),
  idempotency_key: z
    .string()
    .optional()
    .describe("the same key and arguments again return the first proposal instead of posting a second card"),
  group_key: z
    .string()
    .optional()
    .describe(
      "the same label on several proposals of one action (e.g. one per alert of an incident) puts them on one Slack " +
        "card instead of one each; each is still decided on its own. Printable, at most 64 characters",
    ),
  wait_seconds: waitSeconds,
};

const getShape = { id: proposalId, wait_seconds: waitSeconds };
const cancelShape = { id: proposalId };

/** What a tool answers about a proposal: enough for an agent to act on, and the deadline. */
function brief(p: ProposalView) {
  return {
    id: p.id,
    status: p.status,
    action: p.action,
    deadline: p.expires_at,
    approvals: p.approvals.length,
    required_approvals: p.escalated ? (p.rule.escalation?.required_approvals ?? 1) : p.rule.required_approvals,
    decision: p.decision,
    result: p.result,
    dispatch_error: p.status === "dispatch_failed" ? p.dispatch.last_error : null,
  };
}

function answer(value: Record<string, unknown>): ToolResult {
  return { content: [{ type: "text", text: JSON.stringify(value) }], structuredContent: value };
}

/** A refusal as a tool error the model can read: the API's code and message, and each field it names. */
function refusal(error: ApiError): ToolResult {
  const fields = error.details.map((d) => `\n- ${d.path}: ${d.message}`).join("");
  return { content: [{ type: "text", text: `${error.code}: ${error.message}${fields}` }], isError: true };
}

/**
 * Runs a tool's body, turning the API's refusals (and a missing scope) into tool errors. Anything else is our fault:
 * logged here and described to the model only as such, as the app's error handler does for HTTP.
 */
async function tool(proposer: Proposer, scopes: Scope[], body: () => Promise<ToolResult>): Promise<ToolResult> {
  if (!scopes.some((scope) => hasScope(proposer.key, scope))) {
    return refusal(new ApiError(403, "forbidden", `this API key lacks the ${scopes.join(" or ")} scope for this tool`));
  }
  try {
    return await body();
  } catch (error) {
    if (error instanceof ApiError) return refusal(error);
    console.error("unhandled error in an MCP tool:", error);
    return refusal(new ApiError(503, "internal", "internal error; try again later"));
  }
}

interface Extra {
  _meta?: { progressToken?: string | number };
  signal: AbortSignal;
  sendNotification: (n: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; total?: number; message?: string };
  }) => Promise<void>;
}

/**
 * Holds like ?wait=: until the status leaves `from`, `seconds` pass or the client gives up. With a progressToken,
 * notifies when the wait starts, at every change (an approval) and every PROGRESS_EVERY_SECONDS: status, approvals
 * so far, time left to decide.
 */
async function waitFor(proposer: Proposer, id: string, from: string, seconds: number, extra: Extra): Promise<Proposal> {
  const stub = proposalStub(proposer.ns, id);
  const token = extra._meta?.progressToken;
  const started = Date.now();
  const until = started + seconds * 1000;
  let wait = 0;
  for (;;) {
    const p = stub ? await stub.read(wait) : null;
    if (!p) throw new ApiError(404, "not_found", "no proposal with that id");
    const now = Date.now();
    if (token !== undefined) {
      const b = brief(p);
      const left = Math.max(0, Math.round((Date.parse(p.expires_at) - now) / 1000));
      await extra.sendNotification({
        method: "notifications/progress",
        params: {
          progressToken: token,
          progress: Math.min(seconds, (now - started) / 1000),
          total: seconds,
          message: `${p.status}: ${b.approvals} of ${b.required_approvals} approvals, ${left} s left to decide`,
        },
      });
    }
    if (p.status !== from || isTerminal(p.status) || now >= until || extra.signal.aborted) return p;
    wait = Math.max(1, Math.min(Math.ceil((until - now) / 1000), PROGRESS_EVERY_SECONDS));
  }
}

/** A fresh server for one request (stateless: nothing of an MCP session outlives its HTTP request). */
export function mcpServer(proposer: Proposer): McpServer {
  const server = new McpServer(
    { name: "signoff", version: pkg.version },
    {
      capabilities: { tools: {} },
      // Ajv compiles schemas with `new Function`, which Workers forbid; @cfworker/json-schema interprets them.
      jsonSchemaValidator: new CfWorkerJsonSchemaValidator(),
      instructions:
        "signoff is an approval gate: you propose an action, people decide in Slack, and only an approved action " +
        "runs. Call list_actions, then propose_action with wait_seconds, then get_proposal with wait_seconds " +
        "until the status is final. You cannot approve: nothing you call decides.",
    },
  );

  server.registerTool(
    "list_actions",
    {
      title: "List the actions you may propose",
      description:
        "The action types this API key may propose, each with its params JSON Schema, who decides (counts) and " +
        "how many approvals it needs, and its time to decide.",
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    () =>
      tool(proposer, ["proposals:write", "proposals:read"], async () =>
        answer(actionsFor(proposer.config.policy, proposer.key)),
      ),
  );

  server.registerTool(
    "propose_action",
    {
      title: "Propose an action for people to approve",
      description:
        "Asks people in Slack to approve an action; nothing runs until enough of them approve. Returns the " +
        "proposal's id, status and deadline. Proposing runs nothing and decides nothing.",
      inputSchema: proposeShape,
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    (args, extra) =>
      tool(proposer, ["proposals:write"], async () => {
        const { idempotency_key, wait_seconds, action, ...texts } = args;
        const raw = { ...texts, action: { type: action.type, params: action.params ?? {} } };
        const { view } = await propose(proposer, raw, idempotency_key);
        if (!wait_seconds) return answer(brief(view));
        return answer(brief(await waitFor(proposer, view.id, view.status, wait_seconds, extra)));
      }),
  );

  server.registerTool(
    "get_proposal",
    {
      title: "Read a proposal, optionally waiting for its decision",
      description:
        "The proposal's status (pending, approved, dispatched, succeeded, failed, dispatch_failed, denied, " +
        "expired, cancelled), approvals so far, deadline, decision and result.",
      inputSchema: getShape,
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ id, wait_seconds }, extra) =>
      tool(proposer, ["proposals:read"], async () => {
        const stub = proposalStub(proposer.ns, id);
        const p = stub ? await stub.read() : null;
        if (!p) throw new ApiError(404, "not_found", "no proposal with that id");
        if (!wait_seconds || isTerminal(p.status)) return answer(brief(p));
        return answer(brief(await waitFor(proposer, id, p.status, wait_seconds, extra)));
      }),
  );

  server.registerTool(
    "cancel_proposal",
    {
      title: "Cancel a pending proposal you made",
      description: "Withdraws a pending proposal this API key created: it will never run. Only pending proposals.",
      inputSchema: cancelShape,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    ({ id }) =>
      tool(proposer, ["proposals:write"], async () => {
        const stub = proposalStub(proposer.ns, id);
        if (!stub) throw new ApiError(404, "not_found", "no proposal with that id");
        const outcome = await stub.cancel(proposer.key.name);
        if (!outcome.ok) throw toApiError(outcome.refusal);
        return answer(brief(outcome.proposal));
      }),
  );

  return server;
}
