// Job: the proposal's Microsoft Teams messages (issue 7). First the Adaptive Card with one signed link per choice,
// then a short follow-up for each status change (incoming webhooks cannot edit a message). Retries honour
// Retry-After; failures are audited and never block or reverse a decision, as for Slack.
import { mintLinkUrls } from "../../links/token.ts";
import { renderTeamsCard, renderTeamsOutcome } from "../../teams/card.ts";
import { postToTeams } from "../../teams/webhook.ts";
import { linkChoices, teamsRecipient } from "../lifecycle.ts";
import { messageRetryDelayMs } from "../scheduler.ts";
import { listLinks } from "../store.ts";
import type { Proposal } from "../types.ts";
import { DONE, type JobRunner } from "./context.ts";

const MESSAGE_ATTEMPTS = 10;

export const syncTeams: JobRunner = async (ctx, job) => {
  for (;;) {
    const p = ctx.proposal();
    const teams = p.teams;
    // A verification prompt's links answer by possession: in a channel, anyone could say "yes, that was me" (SPEC 12).
    // The policy refuses a Teams webhook there; one stored before it did posts nothing, neither card nor outcome.
    if (!teams || p.kind !== "approval") return DONE;
    // A card for a proposal decided before it could be posted would offer dead buttons: only the outcome is sent.
    const step = !teams.card_posted
      ? p.status === "pending"
        ? "card"
        : "skip_card"
      : p.status !== "pending" && teams.announced !== p.status
        ? "outcome"
        : null;
    if (step === null) return DONE;
    if (step === "skip_card") {
      ctx.commit({ ...p, teams: { ...teams, card_posted: true } }, []);
      continue;
    }
    const body = step === "card" ? renderTeamsCard(p, await cardLinks(ctx, p)) : renderTeamsOutcome(p);
    const result = await postToTeams(teams.webhook, body);
    const now = ctx.proposal();
    const done = (): Proposal => ({
      ...now,
      teams: step === "card" ? { ...now.teams!, card_posted: true } : { ...now.teams!, announced: p.status },
    });
    if (result.kind === "ok") {
      ctx.commit(done(), [{ type: "teams.posted", actor: "system", details: { message: step, status: p.status } }]);
      continue;
    }
    const attempt = job.attempt + 1;
    const final = result.kind === "failed" || attempt >= MESSAGE_ATTEMPTS;
    ctx.commit(final ? done() : null, [
      {
        type: "teams.failed",
        actor: "system",
        details: { message: step, status: p.status, attempt, error: result.error, final },
      },
    ]);
    if (final) continue;
    const wait = messageRetryDelayMs(result.kind === "retry" ? result.afterMs : null, attempt);
    return { retryAt: ctx.now() + wait };
  }
};

/** The Teams identity's links (approvals only: teamsRecipient), in the order of the choices. */
async function cardLinks(ctx: Parameters<JobRunner>[0], p: Proposal) {
  const recipient = teamsRecipient(p);
  const config = ctx.config();
  if (recipient === null || config.linkSecret === null || config.publicUrl === null) return [];
  const order = linkChoices(p);
  const issued = listLinks(ctx.sql)
    .filter((link) => link.recipient === recipient && order.includes(link.choice))
    .sort((a, b) => order.indexOf(a.choice) - order.indexOf(b.choice));
  return mintLinkUrls(config.linkSecret, config.publicUrl, p, issued);
}
