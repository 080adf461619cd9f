// One Durable Object per proposal: owns its state, serializes every transition, and drives
// expiry, Slack sync, Teams messages, mailed links, dispatch, outcome events and audit delivery
// from its alarm.
import { DurableObject } from "cloudflare:workers";
import type { AuditEvent } from "../audit/chain.ts";
import type { ObjectChainHead } from "../audit/heads.ts";
import { type Config, type ConfigEnv, loadConfig } from "../config/load.ts";
import type { Refusal } from "../errors.ts";
import { newNonce } from "../lib/crypto.ts";
import { breakGlassMessages, refusalMessage } from "../slack/card.ts";
import { standingOf } from "../slack/standing.ts";
import { membershipOf } from "../slack/usergroups.ts";
import { flushAudit } from "./jobs/audit-flush.ts";
import type { JobContext, JobOutcome, JobRunner } from "./jobs/context.ts";
import { dispatchToRunner } from "./jobs/dispatch.ts";
import { mailLinks } from "./jobs/mail.ts";
import { deliverNotifications } from "./jobs/notify.ts";
import { nextReminder, reminderDueAt, sendReminder } from "./jobs/remind.ts";
import {
  EPHEMERAL_PREFIX,
  type EphemeralPayload,
  hasSlackCard,
  REPLY_INTERVAL_MS,
  syncSlack,
} from "./jobs/slack-sync.ts";
import { syncTeams } from "./jobs/teams-sync.ts";
import {
  applyAutoEscalation,
  applyBreakGlass,
  applyBreakGlassReview,
  applyCancel,
  applyClick,
  applyCreate,
  applyEdit,
  applyExpiry,
  applyLinkUse,
  applyRunnerResult,
  autoEscalationAt,
  type ClickKind,
  currentApprovers,
  type EventDraft,
  groupsOf,
  isTerminal,
  linkChoices,
  linkDeciders,
  linkRefusal,
  mailRecipients,
  narrowedApprovers,
  precheckDeny,
  precheckEdit,
  type Refused,
  type Standing,
  type Transition,
} from "./lifecycle.ts";
import { backoffMs, JOB_KINDS, type Job, type JobKind, JobTable } from "./scheduler.ts";
import {
  appendToOutbox,
  type ChainEnd,
  chainHead,
  findLink,
  forgetOnDemandTables,
  type IssuedLink,
  issueLinks,
  lastReplyAt,
  listLinks,
  loadProposal,
  markLinkUsed,
  markWebhookSeen,
  migrate,
  objectChainHead,
  queueNotification,
  saveProposal,
  sealDrafts,
} from "./store.ts";
import type { LinkChoice, Proposal } from "./types.ts";
import { editedEvent, outcomeEvent } from "./view.ts";

export type CreateOutcome =
  | {
      ok: true;
      created: boolean;
      proposal: Proposal;
      /**
       * A verification prompt's issued links, for the proposer to deliver to the addressee. Never an approval's:
       * signoff delivers those itself, and no API answer carries them (SPEC 12).
       */
      links: IssuedLink[];
    }
  | { ok: false; refusal: Refusal };
export type Outcome = { ok: true; proposal: Proposal } | { ok: false; refusal: Refusal };

export interface ClickInput {
  kind: ClickKind;
  user: string;
  /** The workspace the signed payload puts the clicker in (`user.team_id`), compared with SLACK_TEAM_ID. */
  team?: string | null;
  reason?: string;
  /** Where to send an ephemeral refusal (the channel the card is in), if anywhere. */
  channel?: string;
  /** A Home-tab click: drawnState() of the proposal as its view showed it (lifecycle.ts refuses a changed one). */
  drawn?: string;
  /** A card click: the plan its buttons were drawn on (card.ts `drawnPlan`; lifecycle.ts refuses a stale Approve). */
  plan?: string | null;
}

export type ClickOutcome = { ok: true; status: Proposal["status"] } | { ok: false; code: string; message: string };

/** Whether the Deny modal may open, with the summary it shows. */
export type DenyCheckOutcome =
  | { ok: true; summary: string /** the plan in force, which a break-glass modal carries */; plan?: string }
  | { ok: false; code: string; message: string };

/** Break-glass from Slack: the Break glass button (a check: `reason` absent) or its modal's submission. */
export interface BreakGlassClick {
  user: string;
  team?: string | null;
  reason?: string;
  channel?: string;
  /** The plan the button or modal was drawn on (lifecycle.ts BreakGlassInput.plan). */
  plan?: string | null;
}

/** An answer to the break-glass review question ("Was this break-glass approval justified?"). */
export interface BreakGlassReviewClick {
  user: string;
  team?: string | null;
  justified: boolean;
  channel?: string;
}

/** Edit before approve from Slack: the Edit button (a check: no `values`) or its modal's submission. */
export interface EditClick {
  user: string;
  team?: string | null;
  /** Each editable param's new value (`undefined`: left out); absent for the button's check. */
  values?: Record<string, unknown>;
  /** The plan the modal was opened on. */
  base?: string;
  channel?: string;
}

export type EditOutcome =
  | { ok: true; proposal: Proposal }
  | { ok: false; code: string; message: string; details?: Array<{ path: string; message: string }> };

/** A decision through a signed link whose token verified; `expires` is its `e` (Unix seconds). */
export interface LinkInput {
  recipient: string;
  /** The e-mail Cloudflare Access vouched for on this request, or null (possession-only verification links). */
  identity: string | null;
  choice: LinkChoice;
  nonce: string;
  expires: number;
  reason?: string;
  /** The plan the confirmation page showed (a short plan hash): a stale approval is refused. */
  plan?: string;
}

export type LinkOutcome =
  | { ok: true; proposal: Proposal }
  | { ok: false; code: string; message: string; proposal: Proposal | null };

const RUNNERS: Record<JobKind, JobRunner> = {
  expire: async (ctx) => {
    const p = ctx.proposal();
    const transition = applyExpiry(p, ctx.now());
    if (transition.ok) ctx.commit(transition.proposal, transition.events);
    else if (p.status === "pending") return { retryAt: Date.parse(p.expires_at) };
    return { done: true };
  },
  audit: flushAudit,
  slack: syncSlack,
  dispatch: dispatchToRunner,
  notify: deliverNotifications,
  teams: syncTeams,
  mail: mailLinks,
  remind: sendReminder,
  // Scheduled at autoEscalationAt() when the proposal is created, cancelled once it is escalated or decided.
  escalate: async (ctx) => {
    const transition = applyAutoEscalation(ctx.proposal(), ctx.now());
    if (transition.ok) ctx.commit(transition.proposal, transition.events);
    return { done: true };
  },
};

/** Whether the Slack messages would show something different (not just bookkeeping). */
function cardChanged(before: Proposal, next: Proposal): boolean {
  return (
    before.status !== next.status ||
    before.approvals.length !== next.approvals.length ||
    before.break_glass?.reviews.length !== next.break_glass?.reviews.length ||
    Boolean(before.escalated) !== Boolean(next.escalated) ||
    before.result !== next.result
  );
}

/** A lifecycle.ts decision as what to commit: the next state when allowed, its events either way. */
function committed(t: Transition): { next: Proposal | null; events: EventDraft[] } {
  return { next: t.ok ? t.proposal : null, events: t.events };
}

/** What one call changes, decided from the proposal as it is inside the step, and what the caller is answered. */
interface Change<R> {
  /** The next state, or null when only `events` are recorded (a refusal, a note). */
  next: Proposal | null;
  events: EventDraft[];
  /** Writes besides the proposal that belong to the same step (a link marked used, a reply to send). */
  also?: (now: number) => void;
  answer: R;
}

const NO_PROPOSAL: Refusal = { status: 404, code: "not_found", message: "no such proposal" };
const NO_PROPOSAL_SLACK = { ok: false, code: "not_found", message: "This proposal does not exist." } as const;

/** What changes the proposal: run first in an alarm run, so the messages after it show the outcome. */
const CHANGES: readonly JobKind[] = ["expire", "dispatch", "escalate"];
/** What tells people about it: every other kind but the audit flush, which goes last (so a new kind is never left out). */
const MESSAGES: readonly JobKind[] = JOB_KINDS.filter((kind) => !CHANGES.includes(kind) && kind !== "audit");
/**
 * How long an alarm run holds the messages back for a dispatch under way: a runner that answers within it gets
 * one card update showing the result; a slower one gets "approved, running" now and the result when it comes.
 * This is how long a card may show a proposal as pending after it was approved (README "Slack card updates").
 */
export const CARD_WAIT_MS = 1_000;
/** At most this many jobs per alarm run (the rest re-arm it): inside an invocation's subrequest limits. */
export const JOBS_PER_RUN = 20;
/**
 * At most this many messages of one alarm run in flight at once. An invocation holds at most six connections open;
 * a request queued behind them would spend its deadline waiting, and the sixth is the dispatch's (a change of the
 * same run, or sent from an approving call).
 */
export const JOBS_IN_FLIGHT = 5;
/** Rounds of changes-then-messages per run (a slow runner's answer is the second). */
const ROUNDS_PER_RUN = 3;

/** How long one run may hold its job before another run may take it over. */
function leaseMs(kind: JobKind, config: Config | null): number {
  if (kind === "dispatch") return (config?.dispatchTimeoutMs ?? 10_000) + 5_000;
  return 30_000;
}

export class ProposalObject extends DurableObject<Env> {
  // Internals are #private: TypeScript's `private` is a type annotation only, and a stub could
  // call such a method over RPC. The public methods below are the RPC surface, nothing more.
  readonly #sql: SqlStorage;
  readonly #jobs: JobTable;
  #cached: Proposal | null | undefined;
  readonly #waiters = new Set<() => void>();
  /** The platform alarm as last set or read: undefined until read, null when none is set. */
  #alarmAt: number | null | undefined;
  /** The audit chain's end as last sealed (undefined until read): sealing an event needs it, reading it cost a query. */
  #head: ChainEnd | undefined;
  /** Events sealed by the transaction under way: written to the outbox as one row when its step ends. */
  #sealed: AuditEvent[] = [];
  /** Whether an audit flush was asked for since the last one was claimed: the job row is there, due, not yet taken. */
  #flushAsked = false;
  /** Set while an RPC call's transaction runs: an approval in it holds its dispatch for sending once it commits. */
  #sendAfterCommit = false;
  /** The dispatch job that transaction held (JobTable.hold), to be sent as soon as it has committed. */
  #held: Job | null = null;
  /** The dispatch being sent from an approving call (see #dispatchNow), while it is under way. */
  #sending: Promise<void> | null = null;
  /** Whether an alarm run is under way: it picks up what a dispatch sent meanwhile asked for, and re-arms after it. */
  #alarmRunning = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    migrate(this.#sql);
    this.#jobs = new JobTable(this.#sql);
  }

  // ---- RPC -------------------------------------------------------------------------

  /** Creates the proposal, or (same request again under an Idempotency-Key) returns it. */
  async create(proposal: Proposal, requestSha256: string): Promise<CreateOutcome> {
    const existing = loadProposal(this.#sql);
    if (existing) {
      if (existing.request_sha256 === requestSha256)
        return { ok: true, created: false, proposal: existing.proposal, links: this.#proposerLinks(existing.proposal) };
      return {
        ok: false,
        refusal: {
          status: 409,
          code: "idempotency_conflict",
          message: "Idempotency-Key was already used with a different request body",
        },
      };
    }
    return this.#commit((now) => {
      saveProposal(this.#sql, proposal, requestSha256);
      this.#cached = proposal;
      this.#record(proposal.id, applyCreate(proposal).events, now);
      // One single-use link per recipient and choice; the nonce is what the signed token names.
      issueLinks(
        this.#sql,
        linkDeciders(proposal).flatMap((recipient) =>
          linkChoices(proposal).map((choice) => ({ recipient, choice, nonce: newNonce() })),
        ),
      );
      this.#jobs.schedule("expire", "ttl", Date.parse(proposal.expires_at));
      if (hasSlackCard(proposal)) this.#jobs.schedule("slack", "card", now);
      if (proposal.teams) this.#jobs.schedule("teams", "sync", now);
      // One mail per e-mail recipient, each its own job: one address that fails never holds up the others.
      if (proposal.mail) for (const recipient of mailRecipients(proposal)) this.#jobs.schedule("mail", recipient, now);
      // The first reminder only: it re-arms itself for the next fraction once it is over (jobs/remind.ts).
      const reminder = nextReminder(proposal, null);
      if (reminder) this.#jobs.schedule("remind", reminder.key, reminder.at);
      const escalateAt = autoEscalationAt(proposal);
      if (escalateAt !== null) this.#jobs.schedule("escalate", "auto", escalateAt);
      return { ok: true, created: true, proposal, links: this.#proposerLinks(proposal) };
    });
  }

  /** The proposal, or null; with `waitSeconds`, first waits (at most that long) for its status to change. */
  async read(waitSeconds = 0): Promise<Proposal | null> {
    const p = this.#current();
    if (!p || waitSeconds <= 0 || isTerminal(p.status)) return p;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitSeconds * 1000);
      this.#waiters.add(done);
    });
    return this.#current();
  }

  /** Cancels at the request of the key that created it; `reason` says why (the card and the audit log show it). */
  async cancel(keyName: string, reason?: string): Promise<Outcome> {
    return this.#mutate({ ok: false, refusal: NO_PROPOSAL }, (p, now) => {
      const t = applyCancel(p, keyName, now, reason);
      const answer: Outcome = t.ok
        ? { ok: true, proposal: t.proposal }
        : {
            ok: false,
            refusal:
              t.code === "not_creator"
                ? { status: 403, code: "forbidden", message: t.message }
                : { status: 409, code: "wrong_state", message: t.message },
          };
      return { ...committed(t), answer };
    });
  }

  /**
   * A Slack click. Group membership is looked up first (network); the decision itself is
   * taken afterwards in one synchronous step on the state as it is then, so concurrent
   * clicks are serialized and only the first transition out of `pending` wins.
   */
  async click(input: ClickInput): Promise<ClickOutcome> {
    const before = this.#current();
    if (!before) return NO_PROPOSAL_SLACK;
    const [membership, standing] = await this.#clicker(before, input.user, input.team);
    return this.#mutate<ClickOutcome>(NO_PROPOSAL_SLACK, (p, now) => {
      const { kind, user, reason, drawn, plan } = input;
      const via = drawn === undefined ? "slack" : "slack_home";
      const t = applyClick(p, { kind, user, memberOf: membership.memberOf, standing, reason, via, drawn, plan }, now);
      if (t.ok) return { ...committed(t), answer: { ok: true, status: t.proposal.status } };
      const message =
        t.code === "not_an_approver" && membership.unresolved.length > 0
          ? "Your Slack user-group membership could not be checked just now; please try again in a minute."
          : t.message;
      return {
        ...committed(t),
        also: (at) => {
          if (input.channel)
            this.#ephemeral({ channel: input.channel, user, text: refusalMessage(p, t.code, message) }, at);
        },
        answer: { ok: false, code: t.code, message },
      };
    });
  }

  /**
   * Break-glass (lifecycle.ts `applyBreakGlass`). Without a reason it only checks whether the modal may open: the same
   * checks run on a copy and nothing but a refusal is recorded. With one, it decides.
   */
  async breakGlass(input: BreakGlassClick, check = false): Promise<DenyCheckOutcome> {
    const before = this.#current();
    if (!before) return NO_PROPOSAL_SLACK;
    const [membership, standing] = await this.#clicker(before, input.user, input.team, true);
    return this.#mutate<DenyCheckOutcome>(NO_PROPOSAL_SLACK, (p, now) => {
      const t = applyBreakGlass(
        p,
        // A check has no reason yet: a stand-in lets every other check run, and its result is never kept.
        {
          user: input.user,
          standing,
          memberOf: membership.memberOf,
          reason: check ? "?" : input.reason,
          via: "slack",
          plan: input.plan,
        },
        now,
      );
      if (t.ok) {
        if (check) return { next: null, events: [], answer: { ok: true, summary: p.summary, plan: p.plan_sha256 } };
        return { ...committed(t), answer: { ok: true, summary: p.summary } };
      }
      return {
        ...committed(t),
        also: (at) => {
          if (input.channel && check)
            this.#ephemeral(
              { channel: input.channel, user: input.user, text: refusalMessage(p, t.code, t.message) },
              at,
            );
        },
        answer: { ok: false, code: t.code, message: t.message },
      };
    });
  }

  /**
   * Edit before approve (lifecycle.ts `applyEdit`). Without `values` it only checks whether the Edit modal may open (a
   * refusal is audited and told like a click's); with them it edits: approvals so far are voided, the card is redrawn
   * and the proposer's callback gets `proposal.edited` with the diff.
   */
  async edit(input: EditClick): Promise<EditOutcome> {
    const before = this.#current();
    if (!before) return NO_PROPOSAL_SLACK;
    const [membership, standing] = await this.#clicker(before, input.user, input.team);
    return this.#mutate<EditOutcome>(NO_PROPOSAL_SLACK, (p, now) => {
      const who = { user: input.user, standing, memberOf: membership.memberOf, via: "slack" };
      const refused = ({ code, message, details, events }: Refused): Change<EditOutcome> => ({
        next: null,
        events,
        also: (at) => {
          if (input.channel && !input.values)
            this.#ephemeral({ channel: input.channel, user: input.user, text: refusalMessage(p, code, message) }, at);
        },
        answer: { ok: false, code, message, ...(details ? { details } : {}) },
      });
      if (!input.values) {
        const verdict = precheckEdit(p, who, now);
        return verdict.ok ? { next: null, events: [], answer: { ok: true, proposal: p } } : refused(verdict);
      }
      const t = applyEdit(p, { ...who, values: input.values, base: input.base }, now);
      if (!t.ok) return refused(t);
      return {
        ...committed(t),
        also: (at) => {
          // Redrawn even when no approval was voided (cardChanged would not see it), and the proposer told.
          if (hasSlackCard(t.proposal)) this.#jobs.schedule("slack", "card", at);
          if (hasSlackCard(t.proposal) && t.proposal.escalated) this.#jobs.schedule("slack", "escalation", at);
          if (t.proposal.callback_url) {
            queueNotification(this.#sql, "proposal.edited", JSON.stringify(editedEvent(t.proposal, at)));
            this.#jobs.schedule("notify", "queue", at);
          }
        },
        answer: { ok: true, proposal: t.proposal },
      };
    });
  }

  /** An answer to the break-glass review (lifecycle.ts `applyBreakGlassReview`): audited, never a decision. */
  async reviewBreakGlass(input: BreakGlassReviewClick): Promise<ClickOutcome> {
    const before = this.#current();
    if (!before) return NO_PROPOSAL_SLACK;
    const [membership, standing] = await this.#clicker(before, input.user, input.team);
    return this.#mutate<ClickOutcome>(NO_PROPOSAL_SLACK, (p, now) => {
      const { user, justified } = input;
      const t = applyBreakGlassReview(
        p,
        { user, standing, memberOf: membership.memberOf, justified, via: "slack" },
        now,
      );
      if (t.ok) return { ...committed(t), answer: { ok: true, status: t.proposal.status } };
      return {
        ...committed(t),
        also: (at) => {
          if (input.channel) this.#ephemeral({ channel: input.channel, user, text: t.message }, at);
        },
        answer: { ok: false, code: t.code, message: t.message },
      };
    });
  }

  /**
   * Before the Deny modal opens: may this user deny now? A refusal is audited and answered
   * with an ephemeral message, exactly like a refused click.
   */
  async checkDeny(user: string, channel?: string, team?: string | null, drawn?: string): Promise<DenyCheckOutcome> {
    const before = this.#current();
    if (!before) return NO_PROPOSAL_SLACK;
    const [membership, standing] = await this.#clicker(before, user, team);
    return this.#mutate<DenyCheckOutcome>(NO_PROPOSAL_SLACK, (p) => {
      const verdict = precheckDeny(p, user, membership.memberOf, standing, drawn);
      if (verdict.ok) return { next: null, events: [], answer: { ok: true, summary: p.summary } };
      const { code, message } = verdict;
      return {
        next: null,
        events: verdict.events,
        also: (at) => {
          if (channel) this.#ephemeral({ channel, user, text: refusalMessage(p, code, message) }, at);
        },
        answer: { ok: false, code, message },
      };
    });
  }

  /**
   * A decision through a signed link (issue 7), its token already verified by the Worker. Decided like a click, in
   * one synchronous step: the link must be one this object issued, unused and unexpired, and its recipient allowed;
   * it is marked used in the same step as the decision it made. Every refusal is audited.
   */
  async decideByLink(input: LinkInput): Promise<LinkOutcome> {
    const missing: LinkOutcome = {
      ok: false,
      code: "not_found",
      message: "This proposal does not exist.",
      proposal: null,
    };
    return this.#mutate<LinkOutcome>(missing, (p, now) => {
      const t = applyLinkUse(p, findLink(this.#sql, input.nonce), input, now);
      if (!t.ok) return { ...committed(t), answer: { ok: false, code: t.code, message: t.message, proposal: p } };
      return {
        ...committed(t),
        also: (at) => markLinkUsed(this.#sql, input.nonce, at),
        answer: { ok: true, proposal: t.proposal },
      };
    });
  }

  /** What a link's confirmation page shows: the proposal and the issued link. Reads only: a GET never decides. */
  async inspectLink(nonce: string): Promise<{ proposal: Proposal | null; link: IssuedLink | null }> {
    const p = this.#current();
    return { proposal: p, link: p ? findLink(this.#sql, nonce) : null };
  }

  /**
   * Audits a link refused before it reached a decision (a forged signature that names this proposal, a failed
   * CSRF check). `recipient` only when the token verified; a forgery's claims are not repeated.
   */
  async noteLinkRefusal(
    code: string,
    recipient: string | null = null,
    choice: LinkChoice | null = null,
  ): Promise<void> {
    await this.#mutate(undefined, (p) => ({
      next: null,
      events: [linkRefusal(p, code, recipient, choice)],
      answer: undefined,
    }));
  }

  /**
   * Where its group's card was posted (docs/grouping.md): audited as its card's post, and kept as its card, so its
   * reminders reply in that card's thread. Its Slack job reports to the group instead of editing the message itself.
   */
  async noteGroupCard(channel: string, ts: string): Promise<void> {
    await this.#mutate(undefined, (p) => {
      const known = p.slack.messages.some((m) => m.role === "card");
      const ref = { role: "card", channel, ts } as const;
      return {
        next: known ? null : { ...p, slack: { messages: [...p.slack.messages, ref] } },
        events: known
          ? []
          : [{ type: "slack.message_posted", actor: "system", details: { role: "group_card", channel, ts } }],
        answer: undefined,
      };
    });
  }

  /** Audits a Slack call the Worker made on this proposal's behalf that failed (e.g. views.open). */
  async noteSlackFailure(method: string, error: string): Promise<void> {
    await this.#mutate(undefined, () => ({
      next: null,
      events: [{ type: "slack.failed", actor: "system", details: { method, error, final: true } }],
      answer: undefined,
    }));
  }

  /** The runner's asynchronous result (already signature-checked by the Worker). */
  async recordResult(webhookId: string, result: { status: "succeeded" | "failed"; output: string }): Promise<Outcome> {
    return this.#mutate<Outcome>({ ok: false, refusal: NO_PROPOSAL }, (p, now) => {
      // Marked in the same step as the decision: a replay racing the first delivery still loses.
      const seenBefore = !markWebhookSeen(this.#sql, webhookId, now);
      const t = applyRunnerResult(p, { webhookId, ...result, seenBefore }, now);
      if (t.ok) return { ...committed(t), answer: { ok: true, proposal: t.proposal } };
      const status = t.code === "replayed" ? 401 : 409;
      return { ...committed(t), answer: { ok: false, refusal: { status, code: t.code, message: t.message } } };
    });
  }

  /** Its audit chain as it sealed it: GET /v1/audit/checkpoint compares D1's with it (SPEC 12). */
  async auditHead(): Promise<ObjectChainHead> {
    return objectChainHead(this.#sql);
  }

  /**
   * Runs what is due, in an order that lets one run do everything an approval sets off: first what changes the
   * proposal (expiry, the dispatch), then the messages that show it (Slack, Teams, outcome events), so a card
   * shows where the proposal ended instead of being updated once per step, then one audit flush carrying every
   * event the run recorded. A runner slower than CARD_WAIT_MS does not hold the card back: the messages go out
   * with the state as it is then, and the answer's own change follows in the next round of the same run. At most
   * JOBS_PER_RUN jobs per run (the rest re-arm the alarm), so one object stays inside a Worker invocation's
   * subrequest and connection limits however many clicks queued replies.
   */
  override async alarm(): Promise<void> {
    let config: Config | null = null;
    try {
      config = this.#config();
    } catch {
      // Misconfigured: jobs that need config will fail and retry; expiry and audit still run.
    }
    this.#alarmAt = null; // the platform has consumed it
    this.#alarmRunning = true;
    try {
      await this.#runDue(config);
    } finally {
      this.#alarmRunning = false;
    }
    this.#jobs.takeScheduled(); // nextWake() below accounts for everything the run asked for
    await this.#arm(this.#jobs.nextWake());
  }

  /** The alarm's work: rounds of changes then messages, then one audit flush (see alarm()). */
  async #runDue(config: Config | null): Promise<void> {
    const lease = (kind: JobKind) => leaseMs(kind, config);
    let budget = JOBS_PER_RUN;
    for (let round = 0; round < ROUNDS_PER_RUN && budget > 0; round++) {
      const changes = this.#jobs.claimDue(Date.now(), lease, { only: CHANGES, limit: budget });
      budget -= changes.length;
      // A dispatch an approving call is sending counts as one of this run's changes: the card waits for it the same way.
      const sending = round === 0 && this.#sending ? [this.#sending] : [];
      const changing = Promise.all([...changes.map((job) => this.#run(job)), ...sending]);
      if (changes.length + sending.length > 0) await settledWithin(changing, CARD_WAIT_MS);
      // The messages go out JOBS_IN_FLIGHT at a time, beside the changes (at most one request of their own); all are
      // claimed now, each leased for as long as the waves before it may take.
      const waves = Math.ceil(budget / JOBS_IN_FLIGHT);
      const messages = this.#jobs.claimDue(Date.now(), (kind) => lease(kind) * waves, {
        only: MESSAGES,
        limit: budget,
      });
      budget -= messages.length;
      const asked = this.#jobs.asked;
      await Promise.all([changing, inWaves(messages, JOBS_IN_FLIGHT, (job) => this.#run(job))]);
      // Another round only if this one asked for more (a slow runner's answer wants the card updated again).
      if (this.#jobs.asked === asked || !this.#jobs.hasDue(Date.now(), [...CHANGES, ...MESSAGES])) break;
    }
    // The audit flush goes last, so the events those jobs just recorded travel in one D1 batch.
    const flushes = this.#jobs.claimDue(Date.now(), lease, { only: "audit" });
    if (flushes.length > 0) this.#flushAsked = false;
    for (const job of flushes) await this.#run(job);
  }

  // ---- the one path that changes state ---------------------------------------------

  /**
   * How every RPC call that may change the proposal does it: load; in one synchronous step,
   * make an expiry that is due happen (a click after the deadline finds it expired), decide
   * with `decide` (a lifecycle.ts function and any read it needs, inside the step) and write
   * the outcome; then re-arm the alarm. `missing` answers when there is no proposal.
   */
  async #mutate<R>(missing: R, decide: (p: Proposal, now: number) => Change<R>): Promise<R> {
    const loaded = this.#current();
    if (!loaded) return missing;
    return this.#commit((now) => {
      const expiry = applyExpiry(loaded, now);
      if (expiry.ok) this.#apply(expiry.proposal, expiry.events, now);
      const change = decide(expiry.ok ? expiry.proposal : loaded, now);
      this.#apply(change.next, change.events, now);
      change.also?.(now);
      return change.answer;
    });
  }

  /**
   * One synchronous transaction, then the alarm re-armed to whatever it scheduled. An approval in it held its
   * dispatch (#statusChanged): that is sent now, from this call, without waiting for the alarm.
   */
  async #commit<R>(step: (now: number) => R): Promise<R> {
    this.#sendAfterCommit = true;
    let result: R;
    try {
      result = this.#transact(step);
    } finally {
      this.#sendAfterCommit = false;
    }
    const held = this.#held;
    this.#held = null;
    if (held) this.#dispatchNow(held);
    await this.#armForChange();
    return result;
  }

  /**
   * The only transaction: a state change, its audit events and its jobs are written together or not at all. The
   * events it sealed go to the outbox as one row, however many steps of it recorded some.
   */
  #transact<R>(step: (now: number) => R): R {
    const now = Date.now();
    try {
      return this.ctx.storage.transactionSync(() => {
        const result = step(now);
        appendToOutbox(this.#sql, this.#sealed);
        this.#sealed = [];
        return result;
      });
    } catch (error) {
      // Rolled back: what the step remembered of its writes is not true; read it again next time.
      this.#cached = undefined;
      this.#head = undefined;
      this.#sealed = [];
      this.#flushAsked = false;
      this.#held = null;
      forgetOnDemandTables(this.#sql);
      throw error;
    }
  }

  // ---- internals -------------------------------------------------------------------

  /** The links the proposer may deliver: a verification prompt's (possession-only, they never dispatch); none else. */
  #proposerLinks(p: Proposal): IssuedLink[] {
    return p.kind === "verify" ? listLinks(this.#sql) : [];
  }

  #current(): Proposal | null {
    if (this.#cached === undefined) this.#cached = loadProposal(this.#sql)?.proposal ?? null;
    return this.#cached;
  }

  #config(): Config {
    return loadConfig(this.env as unknown as ConfigEnv);
  }

  async #membership(p: Proposal, user: string, breakGlass = false) {
    const groups = groupsOf(p);
    if (breakGlass && (p.rule.break_glass?.approvers ?? []).includes(user)) return { memberOf: [], unresolved: [] };
    // Listed by id in every list that applies, no group needs asking about.
    const listed = !breakGlass && currentApprovers(p).includes(user) && (narrowedApprovers(p) ?? [user]).includes(user);
    if (groups.length === 0 || listed || (p.rule.requester_only && !p.escalated))
      return { memberOf: [], unresolved: [] };
    const config = this.#config();
    return membershipOf(user, groups, { base: config.slackApiBase, token: config.slackBotToken });
  }

  /** Whether the clicker is a full member of signoff's workspace (not a guest, not from a Slack Connect peer). */
  /** Who is clicking, as every check needs it: their groups among this proposal's, and their standing in Slack. */
  #clicker(p: Proposal, user: string, team: string | null | undefined, breakGlass = false) {
    return Promise.all([this.#membership(p, user, breakGlass), this.#standing(user, team ?? null)]);
  }

  #standing(user: string, team: string | null): Promise<Standing> {
    const config = this.#config();
    return standingOf(user, team, config.slackTeamId, { base: config.slackApiBase, token: config.slackBotToken });
  }

  /**
   * Writes a new state (if any) and its audit events, and schedules what follows from the
   * change: Slack sync, dispatch, outcome events, waking long-polls. Only inside #transact.
   */
  #apply(next: Proposal | null, events: EventDraft[], now: number): void {
    const before = this.#current();
    if (next && before) {
      saveProposal(this.#sql, next);
      this.#cached = next;
      if (cardChanged(before, next) && hasSlackCard(next)) {
        this.#jobs.schedule("slack", "card", now);
        if (next.escalated) this.#jobs.schedule("slack", "escalation", now);
      }
      if (next.escalated && !before.escalated) this.#escalated(next);
      // Break-glass tells the normal approvers (with the review question) and the escalation channel at once.
      if (next.break_glass && !before.break_glass) {
        for (const key of breakGlassMessages(next)) this.#jobs.schedule("slack", key, now);
      }
      if (next.status !== before.status) this.#statusChanged(next, now, before.status);
    }
    if (events.length > 0) this.#record(next?.id ?? before!.id, events, now);
  }

  /**
   * After an escalation (a click or the clock): the deadline may have moved, and the reminder not yet sent moves
   * with it (sent ones are not repeated); an automatic escalation still waiting has nothing left to do.
   */
  #escalated(next: Proposal): void {
    this.#jobs.reschedule("expire", "ttl", Date.parse(next.expires_at));
    this.#jobs.cancel("escalate", "auto");
    // One job (objects from before: one per fraction not yet sent), keyed by its fraction.
    for (const job of this.#jobs.list().filter((j) => j.kind === "remind"))
      this.#jobs.reschedule("remind", job.key, reminderDueAt(next, Number(job.key)));
  }

  #statusChanged(next: Proposal, now: number, was: Proposal["status"]): void {
    // The dispatch job lives exactly while the proposal is `approved`: leaving it (an answer, a
    // result on the result route) ends any retry still scheduled. An approving call holds it, to send it itself.
    if (next.status === "approved") {
      const held = this.#sendAfterCommit ? this.#holdDispatch(now) : null;
      if (held) this.#held = held;
      else this.#jobs.schedule("dispatch", "runner", now);
    } else this.#jobs.cancel("dispatch", "runner");
    if (was === "pending") {
      this.#jobs.cancel("expire", "ttl");
      // Never a reminder or an escalation after a decision, an expiry or a cancellation.
      this.#jobs.cancelKind("remind");
      this.#jobs.cancel("escalate", "auto");
    }
    if (next.teams) this.#jobs.schedule("teams", "sync", now);
    if (next.callback_url) {
      const event = outcomeEvent(next, now);
      queueNotification(this.#sql, event.type, JSON.stringify(event));
      this.#jobs.schedule("notify", "queue", now);
    }
    for (const wake of [...this.#waiters]) wake();
  }

  #record(proposalId: string, events: EventDraft[], now: number): void {
    this.#head ??= chainHead(this.#sql);
    const sealed = sealDrafts(proposalId, events, now, this.#head);
    const last = sealed.at(-1);
    if (last) this.#head = { idx: last.idx, hash: last.hash };
    this.#sealed.push(...sealed);
    // One request for a flush is enough until a run takes it (a run under way needs a new one: its version).
    if (!this.#flushAsked) this.#jobs.schedule("audit", "flush", now);
    this.#flushAsked = true;
  }

  /**
   * Queues a refusal's ephemeral reply, at most one per person per REPLY_INTERVAL_MS: clicks while one is waiting
   * replace its text (the newest reason is the one sent), and clicks within the interval after one was sent get
   * none (the refusal is audited either way). A storm of clicks on one card costs a reply per person, not per click.
   */
  #ephemeral(payload: EphemeralPayload, now: number): void {
    const last = lastReplyAt(this.#sql, payload.user);
    if (last !== null && now - last < REPLY_INTERVAL_MS) return;
    this.#jobs.schedule("slack", `${EPHEMERAL_PREFIX}${payload.user}`, now, JSON.stringify(payload));
  }

  /**
   * Schedules the dispatch job already leased to this call (JobTable.hold) for as long as an alarm run would hold it:
   * no alarm run takes it meanwhile, and if this call never finishes the send (the object crashed or was evicted) the
   * row is there and the alarm sends it once the lease has run out. Null when the configuration cannot be read: the
   * alarm then sends it like any job (and records why it cannot).
   */
  #holdDispatch(now: number): Job | null {
    let config: Config;
    try {
      config = this.#config();
    } catch {
      return null;
    }
    return this.#jobs.hold("dispatch", "runner", now, now + leaseMs("dispatch", config));
  }

  /**
   * Sends a held dispatch from the approving call, after its transaction has committed, so approval → runner never
   * waits behind the alarm: the same job run as the alarm's (each attempt counted and audited before it leaves, the
   * answer recorded, a retry scheduled for the alarm). An alarm run under way waits for it before the card update
   * and picks up what it asked for; otherwise the alarm is re-armed after it for what it asked for (one alarm run
   * then does the card and the audit flush), or cleared of the lease's fallback time.
   */
  #dispatchNow(job: Job): void {
    // #run records a failed send itself; only storage failing under it is left, and the lease covers that too.
    const sending = this.#run(job).catch((error) => console.error(`dispatch failed: ${(error as Error).message}`));
    this.#sending = sending;
    const after = sending.then(async () => {
      if (this.#sending === sending) this.#sending = null;
      if (this.#alarmRunning) return;
      this.#jobs.takeScheduled();
      await this.#arm(this.#jobs.nextWake());
    });
    this.ctx.waitUntil(after);
  }

  async #run(job: Job): Promise<void> {
    const context: JobContext = {
      env: this.env,
      sql: this.#sql,
      jobs: this.#jobs,
      config: () => this.#config(),
      now: () => Date.now(),
      proposal: () => this.#current()!,
      // Jobs commit through the same step as RPC calls; the alarm re-arms once they are done.
      commit: (next, events) => this.#transact((now) => this.#apply(next, events, now)),
    };
    let outcome: JobOutcome;
    try {
      if (job.kind !== "audit" && !this.#current()) outcome = { done: true } as const;
      else outcome = await RUNNERS[job.kind](context, job);
    } catch (error) {
      console.error(`job ${job.kind}/${job.key} failed: ${(error as Error).message}`);
      outcome = { retryAt: Date.now() + backoffMs(job.attempt + 1, 1_000, 300_000) };
    }
    if ("done" in outcome) this.#jobs.complete(job);
    else if ("next" in outcome) this.#jobs.rearm(job, outcome.next.key, outcome.next.at);
    else this.#jobs.retry(job, outcome.retryAt);
  }

  /**
   * Sets the platform alarm to `wake` (the earliest job), or deletes it when nothing is left. What the alarm is set
   * to is read from storage once per instance and then remembered: a getAlarm() or setAlarm() on every change was
   * measurable on the click path (npm run bench), and locally each setAlarm is a commit of its own.
   */
  async #arm(wake: number | null): Promise<void> {
    if (this.#alarmAt === undefined) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (wake === null) {
      if (this.#alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.#alarmAt = null;
      return;
    }
    // A job due in the past fires now; setAlarm refuses times <= 0.
    const at = Math.max(wake, Date.now());
    if (this.#alarmAt === null || this.#alarmAt > at || this.#alarmAt < wake) {
      await this.ctx.storage.setAlarm(at);
      this.#alarmAt = at;
    }
  }

  /**
   * After a change outside the alarm: re-arms only when the change asked for a job earlier than the alarm. An
   * alarm left earlier than needed (a job was cancelled) only fires, finds nothing due and re-arms.
   */
  async #armForChange(): Promise<void> {
    const asked = this.#jobs.takeScheduled();
    if (asked === null) return;
    if (this.#alarmAt === undefined && asked > Date.now()) this.#alarmAt = await this.ctx.storage.getAlarm();
    if (typeof this.#alarmAt === "number" && this.#alarmAt <= Math.max(asked, Date.now())) return;
    // The alarm is later than what was asked (or unset, or unknown and the job is due now): the job is the earliest.
    await this.ctx.storage.setAlarm(Math.max(asked, Date.now()));
    this.#alarmAt = Math.max(asked, Date.now());
  }
}

/** Runs `work` on every item, at most `limit` at a time, and waits for all of them (as Promise.all does). */
async function inWaves<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * Waits for `work`, at most `ms`, and leaves no timer behind: a pending timer keeps an object from hibernating, and
 * an object that cannot hibernate is billed for its duration (here up to CARD_WAIT_MS after every dispatch).
 */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
