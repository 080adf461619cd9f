// One Durable Object per proposer key, action and group_key (docs/grouping.md): owns that group's Slack cards (which
// card each proposal is on, the message's ts, coalesced edits) and fans Approve all / Deny all out as one click per
// item to each item's own object. It decides nothing: every decision, audit event and dispatch is the item's.
import { DurableObject } from "cloudflare:workers";
import { type Config, type ConfigEnv, loadConfig } from "../config/load.ts";
import { MESSAGE_ATTEMPTS, targetChannel } from "../proposal/jobs/slack-sync.ts";
import { isTerminal } from "../proposal/lifecycle.ts";
import type { ClickOutcome } from "../proposal/object.ts";
import { type Job, JobTable, messageRetryDelayMs } from "../proposal/scheduler.ts";
import { proposalStub } from "../proposal/stub.ts";
import type { Proposal } from "../proposal/types.ts";
import {
  decidable,
  groupCardRef,
  ITEM_BLOCK_BUDGET,
  itemBlockCost,
  itemLabel,
  renderGroupCard,
} from "../slack/group-card.ts";
import { codeSpan, fit, SLACK_LIMITS, truncate } from "../slack/mrkdwn.ts";
import { callSlack, type SlackCallResult } from "../slack/web-api.ts";
import { GROUP_CARD_MAX_ITEMS, GROUP_UPDATE_INTERVAL_MS, GROUP_WINDOW_SECONDS } from "./limits.ts";
import { type CardRow, type GroupHead, type MemberRow, migrateGroup } from "./store.ts";

/** Approve all / Deny all from one person: the card it was pressed on, and where to tell them how it went. */
export interface GroupClick {
  card: number;
  /**
   * The items the card offered the button for when it was drawn (its value, `groupButtonValue`): the only ones clicked.
   * Null for a value from before the card named them, which clicks nothing.
   */
  offered: readonly string[] | null;
  kind: "approve" | "deny";
  user: string;
  team?: string | null;
  channel?: string;
}

/** How each item answered a group click: its own object's outcome. */
export interface GroupClickItem {
  id: string;
  label: string;
  outcome: ClickOutcome;
}

/** Job keys (kind "slack"): a card's post or edit, telling a member where its card is, a reply to a clicker. */
const CARD = "card:";
const TELL = "tell:";
const REPLY = "reply:";
const REPLY_ATTEMPTS = 3;
const LEASE_MS = 30_000;

/** The whole reply to a press whose value names no items: a card drawn before values named them decides nothing. */
const STALE_CARD =
  ":no_entry_sign: Nothing was decided: this card was drawn before Approve all / Deny all named the items they act on. " +
  "It is being redrawn; press again on the redrawn card.";

/** Approve all's answer for an item whose params an approver edited: its own button, which shows the change. */
const EDITED: ClickOutcome = {
  ok: false,
  code: "edited",
  message: "Its params were edited: approve it with its own button, below the change.",
};

export class ProposalGroup extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  readonly #jobs: JobTable;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    migrateGroup(this.#sql);
    this.#jobs = new JobTable(this.#sql);
  }

  /**
   * A member's state, as its Slack job sends it when it is created and whenever its card would change. A first report
   * puts it on the newest card of its channel that is open (within the window, room left, something still pending),
   * else on a new card; every report asks for the card to be edited, at most once per GROUP_UPDATE_INTERVAL_MS.
   */
  async report(head: GroupHead, p: Proposal): Promise<void> {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec(`INSERT OR IGNORE INTO meta (key, value) VALUES ('head', ?)`, JSON.stringify(head));
      const known = this.#sql.exec<MemberRow>(`SELECT * FROM members WHERE id = ?`, p.id).toArray()[0];
      // A late report never takes an item back (each member reports in order, one job at a time; this is a guard).
      if (known && stage(p.status) < stage(known.status as Proposal["status"])) return;
      const card = known ? Number(known.card) : this.#cardFor(targetChannel(p, "card"), itemBlockCost(p), now);
      if (known)
        this.#sql.exec(`UPDATE members SET status = ?, snapshot = ? WHERE id = ?`, p.status, JSON.stringify(p), p.id);
      else {
        this.#sql.exec(
          `INSERT INTO members (id, card, seq, cost, status, snapshot)
           VALUES (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM members), ?, ?, ?)`,
          p.id,
          card,
          itemBlockCost(p),
          p.status,
          JSON.stringify(p),
        );
        const row = this.#card(card);
        if (row?.ts) this.#jobs.schedule("slack", `${TELL}${p.id}`, now);
      }
      this.#redraw(card, now);
    });
    await this.#arm();
  }

  /**
   * Approve all / Deny all: exactly one click by `user` on each item the card offered the button for when it was drawn
   * that is still pending, each sent to that item's own object, which runs every check a click on its own button runs
   * (and may refuse it alone). An item that joined the card after that drawing, or that it showed without buttons
   * (escalated, past its deadline), is left alone: the confirm dialog did not name it. The clicker is told in one
   * ephemeral reply which items counted and which were refused, and why; a value that names no items (an old card)
   * decides nothing and the card is redrawn.
   */
  async clickAll(input: GroupClick): Promise<GroupClickItem[]> {
    const pending = this.#sql
      .exec<MemberRow>(`SELECT * FROM members WHERE card = ? AND status = 'pending' ORDER BY seq`, input.card)
      .toArray();
    const offered = new Set(input.offered ?? []);
    const items = await Promise.all(pending.filter((m) => offered.has(m.id)).map((m) => this.#clickOne(m, input)));
    // Items a card drawn now would offer that the presser's card did not (they joined since): left alone, counted.
    const now = Date.now();
    const unseen = pending.filter(
      (m) => !offered.has(m.id) && decidable(JSON.parse(String(m.snapshot)) as Proposal, now),
    ).length;
    const stale = input.offered === null;
    // The card the presser saw is out of date: redrawn (as soon as the edit interval allows), to press again on.
    if (stale || unseen > 0) this.#redraw(input.card, now);
    if (input.channel && (stale || unseen > 0 || items.length > 0)) {
      const text = stale ? STALE_CARD : clickAllReply(input.kind, items, unseen);
      const payload = { channel: input.channel, user: input.user, text };
      this.#jobs.schedule("slack", `${REPLY}${input.user}`, now, JSON.stringify(payload));
    }
    await this.#arm();
    return items;
  }

  /** One click of Approve all / Deny all on one member, by its own object. */
  async #clickOne(m: MemberRow, input: GroupClick): Promise<GroupClickItem> {
    const item = JSON.parse(String(m.snapshot)) as Proposal;
    const label = itemLabel(item);
    // An edited item is approved only by its own button, which carries the plan it was drawn on: Approve all
    // could otherwise approve an edit made since the card was last drawn, unseen (docs/grouping.md). The click
    // says it saw the plan as created (`plan: null`), so an edit the card has not heard of yet is refused too.
    if (input.kind === "approve" && item.edits?.length) return { id: String(m.id), label, outcome: EDITED };
    const stub = proposalStub(this.env.PROPOSALS, String(m.id));
    let outcome: ClickOutcome;
    try {
      outcome = stub
        ? await stub.click({ kind: input.kind, user: input.user, team: input.team ?? null, plan: null })
        : { ok: false, code: "not_found", message: "This proposal does not exist." };
    } catch {
      outcome = {
        ok: false,
        code: "unavailable",
        message: "It could not be reached just now; use its own button.",
      };
    }
    return { id: String(m.id), label, outcome };
  }

  /** Runs what is due: card posts and edits, telling members where their card is, replies to clickers. */
  override async alarm(): Promise<void> {
    const jobs = this.#jobs.claimDue(Date.now(), () => LEASE_MS, { only: "slack" });
    await Promise.all(
      jobs.map(async (job) => {
        let retryAt: number | null = null;
        try {
          retryAt = await this.#run(job);
        } catch (error) {
          // A member's object that cannot be reached (busy, restarting): tried again, as long as a card post is.
          console.error(`group job ${job.key} failed: ${(error as Error).message}`);
          if (job.attempt + 1 < MESSAGE_ATTEMPTS) retryAt = Date.now() + messageRetryDelayMs(null, job.attempt + 1);
        }
        if (retryAt === null) this.#jobs.complete(job);
        else this.#jobs.retry(job, retryAt);
      }),
    );
    await this.#arm();
  }

  // ---- internals -------------------------------------------------------------------

  /** The open card of `channel` with room for an item of `cost` blocks, else a new card. */
  #cardFor(channel: string, cost: number, now: number): number {
    const open = this.#sql
      .exec<{ n: number }>(
        `SELECT c.n AS n FROM cards c
         WHERE c.channel = ?1 AND c.opened_at > ?2
           AND (SELECT COUNT(*) FROM members m WHERE m.card = c.n) < ?3
           AND (SELECT COALESCE(SUM(m.cost), 0) FROM members m WHERE m.card = c.n) + ?4 <= ?5
           AND EXISTS (SELECT 1 FROM members m WHERE m.card = c.n AND m.status = 'pending')
         ORDER BY c.n DESC LIMIT 1`,
        channel,
        now - GROUP_WINDOW_SECONDS * 1000,
        GROUP_CARD_MAX_ITEMS,
        cost,
        ITEM_BLOCK_BUDGET,
      )
      .toArray()[0];
    if (open) return Number(open.n);
    return Number(
      this.#sql
        .exec<{ n: number }>(`INSERT INTO cards (channel, opened_at) VALUES (?, ?) RETURNING n`, channel, now)
        .one().n,
    );
  }

  /** Asks for card `n` to be posted at once, or edited at most once an interval however many items changed meanwhile. */
  #redraw(n: number, now: number): void {
    const row = this.#card(n);
    const due = row?.ts ? Math.max(now, Number(row.sent_at) + GROUP_UPDATE_INTERVAL_MS) : now;
    this.#jobs.schedule("slack", `${CARD}${n}`, due);
  }

  #card(n: number): CardRow | undefined {
    return this.#sql.exec<CardRow>(`SELECT * FROM cards WHERE n = ?`, n).toArray()[0];
  }

  #config(): Config {
    return loadConfig(this.env as unknown as ConfigEnv);
  }

  /** One job; null when done, else when to try again. */
  async #run(job: Job): Promise<number | null> {
    if (job.key.startsWith(CARD)) return this.#syncCard(job, Number(job.key.slice(CARD.length)));
    if (job.key.startsWith(TELL)) return this.#tell(job.key.slice(TELL.length));
    if (job.key.startsWith(REPLY)) return this.#reply(job);
    return null;
  }

  /** Posts the card, or edits it to show every item as it stands now. */
  async #syncCard(job: Job, n: number): Promise<number | null> {
    const card = this.#card(n);
    const headRow = this.#sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'head'`).toArray()[0];
    if (!card || !headRow) return null;
    const head = JSON.parse(headRow.value) as GroupHead;
    const members = this.#sql.exec<MemberRow>(`SELECT * FROM members WHERE card = ? ORDER BY seq`, n).toArray();
    const items = members.map((m) => JSON.parse(String(m.snapshot)) as Proposal);
    const now = Date.now();
    const { text, blocks } = renderGroupCard({ ...head, ref: groupCardRef(this.ctx.id.toString(), n) }, items, now);
    const config = this.#config();
    const method = card.ts ? "chat.update" : "chat.postMessage";
    const result = card.ts
      ? await callSlack(config.slackApiBase, config.slackBotToken, method, {
          channel: card.posted_channel,
          ts: card.ts,
          text,
          blocks,
        })
      : await callSlack(config.slackApiBase, config.slackBotToken, method, {
          channel: card.channel,
          text,
          blocks,
          unfurl_links: false,
          unfurl_media: false,
        });
    if (result.kind !== "ok") return this.#failed(job, result, method, MESSAGE_ATTEMPTS, items);
    if (card.ts) {
      this.#sql.exec(`UPDATE cards SET sent_at = ? WHERE n = ?`, now, n);
      return null;
    }
    const data = result.data as { channel?: unknown; ts?: unknown };
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec(
        `UPDATE cards SET ts = ?, posted_channel = ?, sent_at = ? WHERE n = ?`,
        String(data.ts ?? ""),
        String(data.channel ?? card.channel),
        now,
        n,
      );
      // Every member on it now, those that joined while the post was on its way included.
      for (const { id } of this.#sql.exec<{ id: string }>(`SELECT id FROM members WHERE card = ?`, n))
        this.#jobs.schedule("slack", `${TELL}${id}`, now);
    });
    return null;
  }

  /** Tells a member where its card is: its audit chain records the post, its reminders thread under it. */
  async #tell(id: string): Promise<number | null> {
    const row = this.#sql
      .exec<CardRow>(`SELECT c.* FROM cards c JOIN members m ON m.card = c.n WHERE m.id = ?`, id)
      .toArray()[0];
    if (!row?.ts) return null;
    const stub = proposalStub(this.env.PROPOSALS, id);
    if (!stub) return null;
    await stub.noteGroupCard(String(row.posted_channel), String(row.ts));
    return null;
  }

  async #reply(job: Job): Promise<number | null> {
    const payload = JSON.parse(job.payload ?? "{}") as { channel: string; user: string; text: string };
    const config = this.#config();
    const result = await callSlack(config.slackApiBase, config.slackBotToken, "chat.postEphemeral", payload);
    return result.kind === "ok" ? null : this.#failed(job, result, "chat.postEphemeral", REPLY_ATTEMPTS, []);
  }

  /**
   * A Slack call that failed: tried again after Retry-After or backoff until `attempts`; then each item's own audit
   * chain records that its card could not be sent (the group has no chain of its own), and the job ends.
   */
  async #failed(
    job: Job,
    result: Exclude<SlackCallResult, { kind: "ok" }>,
    method: string,
    attempts: number,
    items: readonly Proposal[],
  ): Promise<number | null> {
    const attempt = job.attempt + 1;
    if (result.kind === "retry" && attempt < attempts) return Date.now() + messageRetryDelayMs(result.afterMs, attempt);
    await Promise.allSettled(
      items.map((p) => proposalStub(this.env.PROPOSALS, p.id)?.noteSlackFailure(`group ${method}`, result.error)),
    );
    return null;
  }

  /** Sets the alarm to the earliest job, unless it is already set at or before it. */
  async #arm(): Promise<void> {
    const wake = this.#jobs.nextWake();
    if (wake === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > wake) await this.ctx.storage.setAlarm(Math.max(wake, Date.now()));
  }
}

/** How far a status is along: pending, decided and under way (approved, dispatched), ended. Never goes back. */
function stage(status: Proposal["status"]): number {
  if (status === "pending") return 0;
  return isTerminal(status) ? 2 : 1;
}

/**
 * The clicker's one reply: how many items counted, then each refused item by name, with its own object's reason, then
 * how many items joined the card after the presser's drawing of it (not named: they were not shown, and not clicked).
 */
export function clickAllReply(kind: GroupClick["kind"], items: readonly GroupClickItem[], unseen = 0): string {
  const counted = items.filter((i) => i.outcome.ok).length;
  const verb = kind === "approve" ? "Approve all" : "Deny all";
  const lines = [
    `${counted > 0 ? ":white_check_mark:" : ":no_entry_sign:"} ${verb}: ${counted} of ${items.length} counted.`,
  ];
  for (const item of items) {
    if (item.outcome.ok) continue;
    lines.push(
      `:no_entry_sign: ${codeSpan(item.label, 42)} (${codeSpan(item.id, 80)}) refused: ${fit(item.outcome.message, 300)}`,
    );
  }
  if (unseen > 0) {
    lines.push(
      `:information_source: The card changed since you saw it: ${unseen} item${unseen === 1 ? "" : "s"} that joined ` +
        "it since were left as they are. Press again on the redrawn card to decide them too.",
    );
  }
  return truncate(lines.join("\n"), SLACK_LIMITS.sectionText);
}
