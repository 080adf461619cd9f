// One Durable Object per proposal: owns its state, serializes every transition, and drives
// expiry, Slack sync, dispatch, outcome events and audit delivery from its alarm.
import { DurableObject } from "cloudflare:workers";
import type { ObjectChainHead } from "../audit/heads.ts";
import { type Config, type ConfigEnv, loadConfig } from "../config/load.ts";
import type { Refusal } from "../errors.ts";
import { newNonce } from "../links/token.ts";
import { membershipOf } from "../slack/usergroups.ts";
import { flushAudit } from "./jobs/audit-flush.ts";
import type { JobContext, JobOutcome, JobRunner } from "./jobs/context.ts";
import { dispatchToRunner } from "./jobs/dispatch.ts";
import { deliverNotifications } from "./jobs/notify.ts";
import { type EphemeralPayload, hasSlackCard, syncSlack } from "./jobs/slack-sync.ts";
import { syncTeams } from "./jobs/teams-sync.ts";
import {
  applyCancel,
  applyClick,
  applyExpiry,
  applyLink,
  type ClickKind,
  type EventDraft,
  groupsOf,
  isTerminal,
  linkActor,
  linkChoices,
  linkDeciders,
  mayDecide,
  notPendingMessage,
  type Transition,
} from "./lifecycle.ts";
import { backoffMs, type Job, type JobKind, JobTable } from "./scheduler.ts";
import {
  appendToOutbox,
  findLink,
  type IssuedLink,
  issueLinks,
  listLinks,
  loadProposal,
  markLinkUsed,
  markWebhookSeen,
  migrate,
  objectChainHead,
  queueNotification,
  saveProposal,
} from "./store.ts";
import type { LinkChoice, Proposal } from "./types.ts";
import { outcomeEvent } from "./view.ts";

export type CreateOutcome =
  | {
      ok: true;
      created: boolean;
      proposal: Proposal /** Issued signed links (none when the action has no links). */;
      links: IssuedLink[];
    }
  | { ok: false; refusal: Refusal };
export type Outcome = { ok: true; proposal: Proposal } | { ok: false; refusal: Refusal };

export interface ClickInput {
  kind: ClickKind;
  user: string;
  reason?: string;
  /** Where to send an ephemeral refusal (the channel the card is in), if anywhere. */
  channel?: string;
}

export type ClickOutcome = { ok: true; status: Proposal["status"] } | { ok: false; code: string; message: string };

/** A decision through a signed link whose token verified; `expires` is its `e` (Unix seconds). */
export interface LinkInput {
  recipient: string;
  choice: LinkChoice;
  nonce: string;
  expires: number;
  reason?: string;
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
};

/** Whether the Slack messages would show something different (not just bookkeeping). */
function cardChanged(before: Proposal, next: Proposal): boolean {
  return (
    before.status !== next.status ||
    before.approvals.length !== next.approvals.length ||
    Boolean(before.escalated) !== Boolean(next.escalated) ||
    before.result !== next.result
  );
}

/** How long one run may hold its job before another run may take it over. */
function leaseMs(kind: JobKind, config: Config | null): number {
  if (kind === "dispatch") return (config?.dispatchTimeoutMs ?? 10_000) + 5_000;
  return 30_000;
}

export class ProposalObject extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly jobs: JobTable;
  private cached: Proposal | null | undefined;
  private readonly waiters = new Set<() => void>();
  /** The platform alarm as last set or read: undefined until read, null when none is set. */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrate(this.sql);
    this.jobs = new JobTable(this.sql);
  }

  // ---- RPC -------------------------------------------------------------------------

  /** Creates the proposal, or (same request again under an Idempotency-Key) returns it. */
  async create(proposal: Proposal, requestSha256: string): Promise<CreateOutcome> {
    const existing = loadProposal(this.sql);
    if (existing) {
      if (existing.request_sha256 === requestSha256)
        return { ok: true, created: false, proposal: existing.proposal, links: listLinks(this.sql) };
      return {
        ok: false,
        refusal: {
          status: 409,
          code: "idempotency_conflict",
          message: "Idempotency-Key was already used with a different request body",
        },
      };
    }
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      saveProposal(this.sql, proposal, requestSha256);
      this.cached = proposal;
      this.record(
        proposal.id,
        [
          {
            type: "proposal.created",
            actor: `key:${proposal.created_by}`,
            details: {
              action_type: proposal.action.type,
              plan_sha256: proposal.plan_sha256,
              requested_by: proposal.requested_by,
              expires_at: proposal.expires_at,
            },
          },
        ],
        now,
      );
      // One single-use link per recipient and choice; the nonce is what the signed token names.
      issueLinks(
        this.sql,
        linkDeciders(proposal).flatMap((recipient) =>
          linkChoices(proposal).map((choice) => ({ recipient, choice, nonce: newNonce() })),
        ),
      );
      this.jobs.schedule("expire", "ttl", Date.parse(proposal.expires_at));
      if (hasSlackCard(proposal)) this.jobs.schedule("slack", "card", now);
      if (proposal.teams) this.jobs.schedule("teams", "sync", now);
    });
    await this.arm();
    return { ok: true, created: true, proposal, links: listLinks(this.sql) };
  }

  /** The proposal, or null; with `waitSeconds`, first waits (at most that long) for its status to change. */
  async read(waitSeconds = 0): Promise<Proposal | null> {
    const p = this.current();
    if (!p || waitSeconds <= 0 || isTerminal(p.status)) return p;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, waitSeconds * 1000);
      this.waiters.add(done);
    });
    return this.current();
  }

  async cancel(keyName: string): Promise<Outcome> {
    const p = this.current();
    if (!p) return { ok: false, refusal: { status: 404, code: "not_found", message: "no such proposal" } };
    const now = Date.now();
    this.expireIfDue(p, now);
    const transition = applyCancel(this.current()!, keyName, now);
    this.ctx.storage.transactionSync(() =>
      this.apply(transition.ok ? transition.proposal : null, transition.events, now),
    );
    await this.arm();
    if (transition.ok) return { ok: true, proposal: transition.proposal };
    const status = transition.code === "not_creator" ? 403 : 409;
    return {
      ok: false,
      refusal: {
        status,
        code: transition.code === "not_creator" ? "forbidden" : "wrong_state",
        message: transition.message,
      },
    };
  }

  /**
   * A Slack click. Group membership is looked up first (network); the decision itself is
   * taken afterwards in one synchronous step on the state as it is then, so concurrent
   * clicks are serialized and only the first transition out of `pending` wins.
   */
  async click(input: ClickInput): Promise<ClickOutcome> {
    const before = this.current();
    if (!before) return { ok: false, code: "not_found", message: "This proposal does not exist." };
    const membership = await this.membership(before, input.user);

    const now = Date.now();
    this.expireIfDue(this.current()!, now);
    const p = this.current()!;
    const transition = applyClick(
      p,
      { kind: input.kind, user: input.user, memberOf: membership.memberOf, reason: input.reason, via: "slack" },
      now,
    );
    let message = transition.ok ? "" : transition.message;
    if (!transition.ok && transition.code === "not_an_approver" && membership.unresolved.length > 0) {
      message = "Your Slack user-group membership could not be checked just now; please try again in a minute.";
    }
    this.ctx.storage.transactionSync(() => {
      this.apply(transition.ok ? transition.proposal : null, transition.events, now);
      if (!transition.ok && input.channel)
        this.ephemeral({ channel: input.channel, user: input.user, text: message }, now);
    });
    await this.arm();
    return transition.ok
      ? { ok: true, status: transition.proposal.status }
      : { ok: false, code: transition.code, message };
  }

  /**
   * Before the Deny modal opens: may this user deny now? A refusal is audited and answered
   * with an ephemeral message, exactly like a refused click.
   */
  async checkDeny(
    user: string,
    channel?: string,
  ): Promise<{ ok: true; summary: string } | { ok: false; code: string; message: string }> {
    const p = this.current();
    if (!p) return { ok: false, code: "not_found", message: "This proposal does not exist." };
    const membership = await this.membership(p, user);
    const now = Date.now();
    this.expireIfDue(this.current()!, now);
    const current = this.current()!;
    let refusal: { code: string; message: string } | null = null;
    if (current.status !== "pending") refusal = { code: "not_pending", message: notPendingMessage(current) };
    else {
      const allowed = mayDecide(current, user, membership.memberOf, "deny");
      if (!allowed.ok) refusal = allowed;
    }
    if (!refusal) return { ok: true, summary: current.summary };
    const events: EventDraft[] = [
      {
        type: "click.refused",
        actor: `slack:${user}`,
        details: { action: "deny", code: refusal.code, status: current.status, via: "slack" },
      },
    ];
    this.ctx.storage.transactionSync(() => {
      this.apply(null, events, now);
      if (channel) this.ephemeral({ channel, user, text: refusal.message }, now);
    });
    await this.arm();
    return { ok: false, ...refusal };
  }

  /**
   * A decision through a signed link (issue 7), its token already verified by the Worker. Decided like a click, in
   * one synchronous step: the link must be one this object issued, unused and unexpired, and its recipient allowed;
   * it is marked used in the same step as the decision it made. Every refusal is audited.
   */
  async decideByLink(input: LinkInput): Promise<LinkOutcome> {
    if (!this.current())
      return { ok: false, code: "not_found", message: "This proposal does not exist.", proposal: null };
    const now = Date.now();
    this.expireIfDue(this.current()!, now);
    const p = this.current()!;
    const actor = linkActor(input.recipient);
    const link = findLink(this.sql, input.nonce);
    let refusal: { code: string; message: string } | null = null;
    let transition: Transition | null = null;
    if (!p.rule.links) {
      refusal = { code: "links_disabled", message: "Signed links are not enabled for this action." };
    } else if (!link || link.recipient !== input.recipient || link.choice !== input.choice) {
      refusal = { code: "unknown_link", message: "This link was not issued for this proposal." };
    } else if (link.used_at !== null) {
      refusal = { code: "already_used", message: "This link was already used: each link decides once." };
    } else if (now > input.expires * 1000) {
      refusal = { code: "expired", message: "This link has expired; nothing was decided." };
    } else {
      transition = applyLink(
        p,
        { recipient: input.recipient, choice: input.choice, ...(input.reason ? { reason: input.reason } : {}) },
        now,
      );
      if (!transition.ok) refusal = { code: transition.code, message: transition.message };
    }
    this.ctx.storage.transactionSync(() => {
      if (transition?.ok) {
        this.apply(transition.proposal, transition.events, now);
        markLinkUsed(this.sql, input.nonce, now);
        return;
      }
      const events = transition?.events ?? [
        {
          type: "link.refused",
          actor,
          details: { choice: input.choice, code: refusal!.code, status: p.status, via: "link" },
        },
      ];
      this.apply(null, events, now);
    });
    await this.arm();
    if (transition?.ok) return { ok: true, proposal: transition.proposal };
    return { ok: false, ...refusal!, proposal: this.current() };
  }

  /** What a link's confirmation page shows: the proposal and the issued link. Reads only: a GET never decides. */
  async inspectLink(nonce: string): Promise<{ proposal: Proposal | null; link: IssuedLink | null }> {
    const p = this.current();
    return { proposal: p, link: p ? findLink(this.sql, nonce) : null };
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
    const p = this.current();
    if (!p) return;
    const now = Date.now();
    const actor = recipient === null ? "link:?" : linkActor(recipient);
    this.ctx.storage.transactionSync(() =>
      this.apply(
        null,
        [
          {
            type: "link.refused",
            actor,
            details: { ...(choice ? { choice } : {}), code, status: p.status, via: "link" },
          },
        ],
        now,
      ),
    );
    await this.arm();
  }

  /** Audits a Slack call the Worker made on this proposal's behalf that failed (e.g. views.open). */
  async noteSlackFailure(method: string, error: string): Promise<void> {
    if (!this.current()) return;
    const now = Date.now();
    this.ctx.storage.transactionSync(() =>
      this.apply(null, [{ type: "slack.failed", actor: "system", details: { method, error, final: true } }], now),
    );
    await this.arm();
  }

  /** The runner's asynchronous result (already signature-checked by the Worker). */
  async recordResult(webhookId: string, result: { status: "succeeded" | "failed"; output: string }): Promise<Outcome> {
    const p = this.current();
    if (!p) return { ok: false, refusal: { status: 404, code: "not_found", message: "no such proposal" } };
    const now = Date.now();
    let outcome: Outcome;
    this.ctx.storage.transactionSync(() => {
      if (!markWebhookSeen(this.sql, webhookId, now)) {
        outcome = {
          ok: false,
          refusal: {
            status: 401,
            code: "replayed",
            message: "this result was already delivered (webhook-id seen before)",
          },
        };
        this.apply(
          null,
          [{ type: "result.refused", actor: "runner", details: { code: "replayed", webhook_id: webhookId } }],
          now,
        );
        return;
      }
      const dispatchedOrUnderWay = p.status === "dispatched" || (p.status === "approved" && p.dispatch.attempts > 0);
      if (!dispatchedOrUnderWay) {
        const message = p.result
          ? "a result was already recorded for this proposal"
          : `proposal is ${p.status}: no dispatch awaits a result`;
        outcome = { ok: false, refusal: { status: 409, code: "wrong_state", message } };
        this.apply(
          null,
          [
            {
              type: "result.refused",
              actor: "runner",
              details: { code: "wrong_state", status: p.status, webhook_id: webhookId },
            },
          ],
          now,
        );
        return;
      }
      const at = new Date(now).toISOString();
      const next: Proposal = {
        ...p,
        status: result.status,
        dispatch: { ...p.dispatch, dispatched_at: p.dispatch.dispatched_at ?? at },
        result: { ...result, at },
      };
      this.apply(
        next,
        [
          {
            type: `proposal.${result.status}`,
            actor: "runner",
            details: { webhook_id: webhookId, output_chars: result.output.length },
          },
        ],
        now,
      );
      this.jobs.cancel("dispatch", "runner");
      outcome = { ok: true, proposal: next };
    });
    await this.arm();
    return outcome!;
  }

  /** Its audit chain as it sealed it: GET /v1/audit/checkpoint compares D1's with it (SPEC 12). */
  async auditHead(): Promise<ObjectChainHead> {
    return objectChainHead(this.sql);
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    let config: Config | null = null;
    try {
      config = this.config();
    } catch {
      // Misconfigured: jobs that need config will fail and retry; expiry and audit still run.
    }
    this.alarmAt = null; // the platform has consumed it
    const lease = (kind: JobKind) => leaseMs(kind, config);
    const due = this.jobs.claimDue(now, lease, { except: "audit" });
    await Promise.all(due.map((job) => this.run(job)));
    // The audit flush goes last, so the events those jobs just recorded travel in the same
    // D1 batch instead of needing another alarm run (measured by npm run bench).
    for (const job of this.jobs.claimDue(Date.now(), lease, { only: "audit" })) await this.run(job);
    await this.arm();
  }

  // ---- internals -------------------------------------------------------------------

  private current(): Proposal | null {
    if (this.cached === undefined) this.cached = loadProposal(this.sql)?.proposal ?? null;
    return this.cached;
  }

  private config(): Config {
    return loadConfig(this.env as unknown as ConfigEnv);
  }

  private async membership(p: Proposal, user: string) {
    const groups = groupsOf(p);
    const listed = [...p.rule.approvers, ...(p.rule.escalation?.approvers ?? [])].includes(user);
    if (groups.length === 0 || listed || p.rule.requester_only) return { memberOf: [], unresolved: [] };
    const config = this.config();
    return membershipOf(user, groups, { base: config.slackApiBase, token: config.slackBotToken });
  }

  /** A click or cancel that arrives after the deadline first makes the expiry happen. */
  private expireIfDue(p: Proposal, now: number): void {
    const transition = applyExpiry(p, now);
    if (transition.ok) this.ctx.storage.transactionSync(() => this.apply(transition.proposal, transition.events, now));
  }

  /**
   * Writes a new state (if any) and its audit events, and schedules what follows from the
   * change: Slack sync, dispatch, outcome events, waking long-polls. Call inside a
   * transactionSync; arm the alarm afterwards.
   */
  private apply(next: Proposal | null, events: EventDraft[], now: number): void {
    const before = this.current();
    if (next && before) {
      saveProposal(this.sql, next);
      this.cached = next;
      if (cardChanged(before, next) && hasSlackCard(next)) {
        this.jobs.schedule("slack", "card", now);
        if (next.escalated) this.jobs.schedule("slack", "escalation", now);
      }
      if (next.escalated && !before.escalated) this.jobs.reschedule("expire", "ttl", Date.parse(next.expires_at));
      if (next.status !== before.status) this.statusChanged(next, now);
    }
    if (events.length > 0) this.record(next?.id ?? before!.id, events, now);
  }

  private statusChanged(next: Proposal, now: number): void {
    if (next.status === "approved") this.jobs.schedule("dispatch", "runner", now);
    if (next.status !== "pending") this.jobs.cancel("expire", "ttl");
    if (next.teams) this.jobs.schedule("teams", "sync", now);
    if (next.callback_url) {
      const event = outcomeEvent(next, now);
      queueNotification(this.sql, event.type, JSON.stringify(event));
      this.jobs.schedule("notify", "queue", now);
    }
    for (const wake of [...this.waiters]) wake();
  }

  private record(proposalId: string, events: EventDraft[], now: number): void {
    appendToOutbox(this.sql, proposalId, events, now);
    this.jobs.schedule("audit", "flush", now);
  }

  private ephemeral(payload: EphemeralPayload, now: number): void {
    this.jobs.schedule("slack", `ephemeral:${crypto.randomUUID()}`, now, JSON.stringify(payload));
  }

  private async run(job: Job): Promise<void> {
    const context: JobContext = {
      env: this.env,
      sql: this.sql,
      jobs: this.jobs,
      config: () => this.config(),
      now: () => Date.now(),
      proposal: () => this.current()!,
      commit: (next, events) => this.ctx.storage.transactionSync(() => this.apply(next, events, Date.now())),
    };
    let outcome: JobOutcome;
    try {
      if (job.kind !== "audit" && !this.current()) outcome = { done: true } as const;
      else outcome = await RUNNERS[job.kind](context, job);
    } catch (error) {
      console.error(`job ${job.kind}/${job.key} failed: ${(error as Error).message}`);
      outcome = { retryAt: Date.now() + backoffMs(job.attempt + 1, 1_000, 300_000) };
    }
    if ("done" in outcome) this.jobs.complete(job);
    else this.jobs.retry(job, outcome.retryAt);
  }

  private async arm(): Promise<void> {
    const wake = this.jobs.nextWake();
    // What the alarm is set to, read from storage once per instance and then remembered
    // (a getAlarm() on every change was measurable on the click path).
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (wake === null) {
      if (this.alarmAt !== null) await this.ctx.storage.deleteAlarm();
      this.alarmAt = null;
      return;
    }
    // A job due in the past fires now; setAlarm refuses times <= 0.
    const at = Math.max(wake, Date.now());
    if (this.alarmAt === null || this.alarmAt > at || this.alarmAt < wake) {
      await this.ctx.storage.setAlarm(at);
      this.alarmAt = at;
    }
  }
}
