// POST /slack/interactions: Slack's interactivity endpoint. Verifies the signature before
// anything is parsed, hands each click to the proposal's Durable Object, answers at once.
import type { ModalView } from "@slack/types";
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../api/http.ts";
import { withConfig } from "../api/middleware.ts";
import type { Config } from "../config/load.ts";
import { ApiError } from "../errors.ts";
import { groupStubAt } from "../group/stub.ts";
import { waitAtMost } from "../lib/deadline.ts";
import { bodyText } from "../lib/encoding.ts";
import type { ClickKind } from "../proposal/lifecycle.ts";
import { type ProposalStub, proposalStub } from "../proposal/stub.ts";
import {
  ACTION_IDS,
  BREAK_GLASS_MODAL,
  breakGlassModalOrigin,
  DENY_MODAL,
  denyModalOrigin,
  drawnPlan,
  refusalText,
  renderBreakGlassModal,
  renderDenyModal,
} from "./card.ts";
import { EDIT_MODAL, editErrors, editModalOrigin, readEditValues, renderEditModal } from "./edit-modal.ts";
import { GROUP_ACTION_IDS, parseGroupCardRef } from "./group-card.ts";
import { drawnFromBlockId } from "./home.ts";
import { type HomeViewer, publishHome } from "./home-publish.ts";
import { type BlockActionsPayload, readInteraction, type ViewSubmissionPayload } from "./payloads.ts";
import { verifySlackSignature } from "./signature.ts";
import { callSlack } from "./web-api.ts";

/** Slack's own payloads (with a whole message's blocks) can be far larger than API bodies. */
const MAX_SLACK_BODY = 1024 * 1024;

/** Our buttons by action_id; a Map, so "toString" or "__proto__" can never match. */
const BUTTONS = new Map<string, ClickKind>([
  [ACTION_IDS.approve, "approve"],
  [ACTION_IDS.deny, "deny"],
  [ACTION_IDS.escalate, "escalate"],
  [ACTION_IDS.verify_yes, "yes"],
  [ACTION_IDS.verify_no, "no"],
  [ACTION_IDS.verify_unsure, "unsure"],
]);

/** views.open must happen within 3 s of the click (the trigger_id expires). */
const VIEWS_OPEN_TIMEOUT_MS = 2_500;

export const slackRoutes = new Hono<AppEnv>();

// Counted as it streams: a body without Content-Length (chunked) is refused at its first byte over the limit,
// never buffered whole (issue 11).
export const limitSlackBody = bodyLimit({
  maxSize: MAX_SLACK_BODY,
  onError: () => {
    throw new ApiError(413, "payload_too_large", `body is larger than ${MAX_SLACK_BODY} bytes`);
  },
});

/**
 * The raw body of a request Slack signed, or a 401 naming the check that failed: one check for every Slack route
 * (interactions, events), with SPEC 5's five-minute replay window.
 */
export async function verifiedSlackBody(c: Context<AppEnv & { Variables: { config: Config } }>): Promise<string> {
  const raw = await bodyText(c.req);
  const verified = await verifySlackSignature(
    c.var.config.slackSigningSecret,
    c.req.raw.headers,
    raw,
    Math.floor(Date.now() / 1000),
  );
  if (!verified.ok) throw new ApiError(401, "bad_signature", `Slack signature refused: ${verified.reason}`);
  return raw;
}

slackRoutes.post("/interactions", withConfig, limitSlackBody, async (c) => {
  const { config } = c.var;
  const raw = await verifiedSlackBody(c);

  const interaction = readInteraction(parsePayloadField(raw));
  switch (interaction.kind) {
    case "invalid":
      throw new ApiError(400, "invalid_request", interaction.problem);
    case "block_actions":
      await onButton(c.env, config, interaction.payload, (work) => c.executionCtx.waitUntil(work));
      return c.body(null, 200);
    case "view_submission":
      return onDenySubmission(
        c.env,
        config,
        (work) => c.executionCtx.waitUntil(work),
        interaction.payload,
        (body) => c.json(body),
        () => c.body(null, 200),
      );
    case "other":
      return c.body(null, 200); // not something signoff asked for (view_closed, …): nothing to do
  }
});

/** The break-glass review's answers by action_id. */
const REVIEW_BUTTONS = new Map<string, boolean>([
  [ACTION_IDS.break_glass_justified, true],
  [ACTION_IDS.break_glass_unjustified, false],
]);

/** Keeps work the answer does not wait for running after it is sent (the Worker's waitUntil). */
type KeepAlive = (work: Promise<unknown>) => void;

/** How long a Home-tab click waits for its redraw before answering; a slower one finishes after the answer. */
const HOME_REDRAW_WAIT_MS = 1_500;

async function onButton(env: Env, config: Config, payload: BlockActionsPayload, keepAlive: KeepAlive): Promise<void> {
  const action = payload.actions[0]!;
  if (action.action_id === ACTION_IDS.break_glass || REVIEW_BUTTONS.has(action.action_id)) {
    const stub = action.value ? proposalStub(env.PROPOSALS, action.value) : null;
    return onBreakGlassButton(env, config, payload, stub, keepAlive);
  }
  if (action.action_id === ACTION_IDS.edit) {
    return onEditButton(config, payload, action.value ? proposalStub(env.PROPOSALS, action.value) : null);
  }
  const all = GROUP_BUTTONS.get(action.action_id);
  if (all) return onGroupButton(env, payload, all);
  const kind = BUTTONS.get(action.action_id);
  const stub = kind && action.value ? proposalStub(env.PROPOSALS, action.value) : null;
  if (!kind || !stub) return; // not one of our buttons, or not one of our ids
  const user = payload.user.id;
  const team = payload.user.team_id ?? null;
  if (payload.view?.type === "home") return onHomeButton(env, config, payload, kind, stub, keepAlive);
  const channel = payload.channel?.id ?? payload.container?.channel_id;
  if (kind !== "deny") {
    const plan = drawnPlan(action.block_id);
    await stub.click({ kind, user, team, ...(channel ? { channel } : {}), ...(plan === undefined ? {} : { plan }) });
    return;
  }
  const check = await stub.checkDeny(user, channel, team);
  if (!check.ok || !payload.trigger_id) return;
  await openDenyModal(config, stub, payload.trigger_id, renderDenyModal(action.value!, check.summary));
}

/** A grouped card's Approve all / Deny all by action_id. */
const GROUP_BUTTONS = new Map<string, "approve" | "deny">([
  [GROUP_ACTION_IDS.approveAll, "approve"],
  [GROUP_ACTION_IDS.denyAll, "deny"],
]);

/**
 * Approve all / Deny all on a grouped card (docs/grouping.md): the group's object sends one click by this person to
 * each pending item the card offered the button for as drawn (the value names them) to that item's own object, which
 * decides it as a click on the item's own button (Deny all gives no reason).
 */
async function onGroupButton(env: Env, payload: BlockActionsPayload, kind: "approve" | "deny"): Promise<void> {
  const ref = parseGroupCardRef(payload.actions[0]!.value ?? "");
  const group = ref ? groupStubAt(env.GROUPS, ref.objectId) : null;
  if (!ref || !group) return; // not one of our cards
  const channel = payload.channel?.id ?? payload.container?.channel_id;
  await group.clickAll({
    card: ref.card,
    offered: ref.offered,
    kind,
    user: payload.user.id,
    team: payload.user.team_id ?? null,
    ...(channel ? { channel } : {}),
  });
}

/**
 * A click in the Home tab: the card's own path (the same object calls, so every check is the card's), carrying the
 * state the view was drawn on, which the object compares with the proposal's inside the decision step. The Home tab
 * has no channel for an ephemeral reply, so the outcome is said at the top of the redrawn view instead.
 */
async function onHomeButton(
  env: Env,
  config: Config,
  payload: BlockActionsPayload,
  kind: ClickKind,
  stub: ProposalStub,
  keepAlive: KeepAlive,
): Promise<void> {
  const action = payload.actions[0]!;
  const viewer = { user: payload.user.id, team: payload.user.team_id ?? null };
  const redraw = (notice: string) => redrawHome(env, config, viewer, notice, keepAlive);
  // A button whose block signoff did not draw for this proposal is treated as drawn on a state that never was.
  const drawn = drawnFromBlockId(action.block_id, action.value!) ?? "unknown";
  if (kind === "deny") {
    const check = await stub.checkDeny(viewer.user, undefined, viewer.team, drawn);
    if (check.ok && payload.trigger_id) {
      await openDenyModal(config, stub, payload.trigger_id, renderDenyModal(action.value!, check.summary, drawn));
      return;
    }
    if (!check.ok) await redraw(refusalText(check.message));
    return;
  }
  const outcome = await stub.click({ kind, user: viewer.user, team: viewer.team, drawn });
  await redraw(outcome.ok ? HOME_DONE[kind] : refusalText(outcome.message));
}

/** Slack wants the answer within 3 s: the redraw is waited for HOME_REDRAW_WAIT_MS, then goes on after it. */
async function redrawHome(
  env: Env,
  config: Config,
  viewer: HomeViewer,
  notice: string,
  keepAlive: KeepAlive,
): Promise<void> {
  const publishing = publishHome(env, config, viewer, notice);
  keepAlive(publishing);
  await waitAtMost(HOME_REDRAW_WAIT_MS, publishing);
}

/** What the redrawn Home tab says after a click that counted. */
const HOME_DONE: Record<ClickKind, string> = {
  approve: ":white_check_mark: Your approval was recorded.",
  deny: ":no_entry: You denied it. Nothing will run.",
  escalate: ":arrow_heading_up: Escalated.",
  yes: ":white_check_mark: Answered.",
  no: ":white_check_mark: Answered.",
  unsure: ":white_check_mark: Answered.",
};

async function openDenyModal(config: Config, stub: ProposalStub, triggerId: string, view: ModalView): Promise<void> {
  const opened = await callSlack(
    config.slackApiBase,
    config.slackBotToken,
    "views.open",
    { trigger_id: triggerId, view },
    fetch,
    VIEWS_OPEN_TIMEOUT_MS,
  );
  if (opened.kind !== "ok") await stub.noteSlackFailure("views.open", opened.error);
}

/**
 * Break glass opens its modal once the same checks as the decision pass; the review's answers are recorded. From the
 * Home tab (a proposal created in a change freeze, listed for its break-glass approvers), a refusal redraws the tab
 * with the reason, since there is no channel to answer in.
 */
async function onBreakGlassButton(
  env: Env,
  config: Config,
  payload: BlockActionsPayload,
  stub: ReturnType<typeof proposalStub>,
  keepAlive: KeepAlive,
): Promise<void> {
  const action = payload.actions[0]!;
  if (!stub) return;
  const user = payload.user.id;
  const team = payload.user.team_id ?? null;
  const channel = payload.channel?.id ?? payload.container?.channel_id;
  const justified = REVIEW_BUTTONS.get(action.action_id);
  if (justified !== undefined) {
    await stub.reviewBreakGlass({ user, team, justified, ...(channel ? { channel } : {}) });
    return;
  }
  const fromHome = payload.view?.type === "home";
  // The plan the card's buttons were drawn on (the Home tab offers break-glass only where no edit can be made).
  const drawn = fromHome ? null : (drawnPlan(action.block_id) ?? null);
  const check = await stub.breakGlass({ user, team, plan: drawn, ...(channel ? { channel } : {}) }, true);
  if (!check.ok && fromHome) await redrawHome(env, config, { user, team }, refusalText(check.message), keepAlive);
  if (!check.ok || !payload.trigger_id) return;
  const opened = await callSlack(
    config.slackApiBase,
    config.slackBotToken,
    "views.open",
    {
      trigger_id: payload.trigger_id,
      view: renderBreakGlassModal(action.value!, check.summary, fromHome, check.plan ?? null),
    },
    fetch,
    VIEWS_OPEN_TIMEOUT_MS,
  );
  if (opened.kind !== "ok") await stub.noteSlackFailure("views.open", opened.error);
}

/** Edit opens its modal, prefilled with the params as they are, once the same checks as the edit itself pass. */
async function onEditButton(config: Config, payload: BlockActionsPayload, stub: ProposalStub | null): Promise<void> {
  if (!stub) return;
  const channel = payload.channel?.id ?? payload.container?.channel_id;
  const check = await stub.edit({
    user: payload.user.id,
    team: payload.user.team_id ?? null,
    ...(channel ? { channel } : {}),
  });
  if (!check.ok || !payload.trigger_id) return;
  await openDenyModal(config, stub, payload.trigger_id, renderEditModal(check.proposal));
}

/** The Edit modal's submission: a refusal (a schema, a param not editable, not allowed) is shown in the modal. */
async function onEditSubmission(
  env: Env,
  payload: ViewSubmissionPayload,
  answer: (body: unknown) => Response,
  close: () => Response,
): Promise<Response> {
  const { proposalId, base } = editModalOrigin(payload.view.private_metadata);
  const stub = proposalStub(env.PROPOSALS, proposalId);
  const values = readEditValues(payload.view.state?.values);
  const firstBlock = `${EDIT_MODAL.blockPrefix}${Object.keys(values)[0] ?? ""}`;
  if (!stub) return answer({ response_action: "errors", errors: { [firstBlock]: "This proposal no longer exists." } });
  const outcome = await stub.edit({
    user: payload.user.id,
    team: payload.user.team_id ?? null,
    values,
    ...(base ? { base } : {}),
  });
  if (outcome.ok) return close();
  return answer({
    response_action: "errors",
    errors: editErrors(Object.keys(values), outcome.message, outcome.details),
  });
}

/** The break-glass modal's submission: a refusal (no reason, not allowed) is shown next to the reason box. */
async function onBreakGlassSubmission(
  env: Env,
  config: Config,
  keepAlive: KeepAlive,
  payload: ViewSubmissionPayload,
  answer: (body: unknown) => Response,
  close: () => Response,
): Promise<Response> {
  const block = BREAK_GLASS_MODAL.reasonBlockId;
  const { proposalId, fromHome, plan } = breakGlassModalOrigin(payload.view.private_metadata);
  const stub = proposalStub(env.PROPOSALS, proposalId);
  if (!stub) return answer({ response_action: "errors", errors: { [block]: "This proposal no longer exists." } });
  const reason = payload.view.state?.values[block]?.[BREAK_GLASS_MODAL.reasonActionId]?.value ?? undefined;
  const outcome = await stub.breakGlass({
    user: payload.user.id,
    team: payload.user.team_id ?? null,
    plan,
    ...(reason ? { reason } : {}),
  });
  if (!outcome.ok) return answer({ response_action: "errors", errors: { [block]: outcome.message } });
  if (fromHome) {
    const viewer = { user: payload.user.id, team: payload.user.team_id ?? null };
    await redrawHome(env, config, viewer, HOME_BROKEN_GLASS, keepAlive);
  }
  return close();
}

/** What the redrawn Home tab says after a break-glass approval from it. */
const HOME_BROKEN_GLASS = ":rotating_light: You approved it alone by break-glass; the approvers have been told.";

async function onDenySubmission(
  env: Env,
  config: Config,
  keepAlive: KeepAlive,
  payload: ViewSubmissionPayload,
  answer: (body: unknown) => Response,
  close: () => Response,
): Promise<Response> {
  if (payload.view.callback_id === BREAK_GLASS_MODAL.callbackId)
    return onBreakGlassSubmission(env, config, keepAlive, payload, answer, close);
  if (payload.view.callback_id === EDIT_MODAL.callbackId) return onEditSubmission(env, payload, answer, close);
  if (payload.view.callback_id !== DENY_MODAL.callbackId) return close();
  const { proposalId, drawn } = denyModalOrigin(payload.view.private_metadata);
  const viewer = { user: payload.user.id, team: payload.user.team_id ?? null };
  const stub = proposalStub(env.PROPOSALS, proposalId);
  if (!stub)
    return answer({
      response_action: "errors",
      errors: { [DENY_MODAL.reasonBlockId]: "This proposal no longer exists." },
    });
  const reason = payload.view.state?.values[DENY_MODAL.reasonBlockId]?.[DENY_MODAL.reasonActionId]?.value ?? undefined;
  // From the Home tab, the deny counts only if the proposal still stands as that tab showed it (checked in the same
  // step as the decision); if not, the modal closes and the tab is redrawn as it stands, saying so.
  const outcome = await stub.click({ kind: "deny", ...viewer, ...(reason ? { reason } : {}), drawn });
  if (!outcome.ok && outcome.code === "changed" && drawn !== undefined) {
    await redrawHome(env, config, viewer, refusalText(outcome.message), keepAlive);
    return close();
  }
  // Any other refusal is shown in the modal itself, next to the reason box.
  if (!outcome.ok)
    return answer({ response_action: "errors", errors: { [DENY_MODAL.reasonBlockId]: outcome.message } });
  if (drawn !== undefined) await redrawHome(env, config, viewer, HOME_DONE.deny, keepAlive);
  return close();
}

function parsePayloadField(raw: string): unknown {
  const text = new URLSearchParams(raw).get("payload");
  if (!text) throw new ApiError(400, "invalid_request", "form field payload is missing");
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_request", "payload is not JSON");
  }
}
