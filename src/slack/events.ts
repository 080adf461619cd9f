// POST /slack/events: Slack's Events API endpoint. Signed like interactions (the same verifier and replay window);
// answers Slack's url_verification; draws the Home tab on app_home_opened; ignores every other event. A delivery
// Slack retries (X-Slack-Retry-Num, after a slow or lost answer) is recognised by its event_id and not processed twice.
import { Hono } from "hono";
import { z } from "zod";
import { type AppEnv, parseJson } from "../api/http.ts";
import { withConfig } from "../api/middleware.ts";
import { ApiError } from "../errors.ts";
import { publishHome } from "./home-publish.ts";
import { limitSlackBody, verifiedSlackBody } from "./interactions.ts";

/** How long an event_id is remembered: Slack retries three times within minutes of the first delivery. */
export const EVENT_ID_KEPT_MS = 60 * 60 * 1000;

const SlackUserId = z.string().regex(/^[UW][A-Z0-9]{2,}$/);

const UrlVerification = z.object({ type: z.literal("url_verification"), challenge: z.string().min(1).max(255) });
const EventCallback = z.object({
  type: z.literal("event_callback"),
  team_id: z.string().max(64).optional(),
  event_id: z.string().min(1).max(255),
  event: z.object({
    type: z.string().max(255),
    user: z.string().max(64).optional(),
    tab: z.string().max(64).optional(),
  }),
});

export const slackEventRoutes = new Hono<AppEnv>();

slackEventRoutes.post("/events", withConfig, limitSlackBody, async (c) => {
  const { config } = c.var;
  const body = parseJson(await verifiedSlackBody(c));
  const type = typeof body === "object" && body !== null ? (body as { type?: unknown }).type : undefined;

  if (type === "url_verification") {
    const parsed = UrlVerification.safeParse(body);
    if (!parsed.success) throw new ApiError(400, "invalid_request", "url_verification without a usable challenge");
    return c.json({ challenge: parsed.data.challenge });
  }
  if (type !== "event_callback") return c.body(null, 200); // app_rate_limited and anything new: nothing to do
  const parsed = EventCallback.safeParse(body);
  if (!parsed.success) throw new ApiError(400, "invalid_request", "event_callback without event_id or event");
  const { team_id: team, event_id: eventId, event } = parsed.data;
  // Another workspace's event (an org-wide install, a shared app) draws nothing here.
  if (config.slackTeamId !== null && team !== undefined && team !== config.slackTeamId) return c.body(null, 200);

  const user = SlackUserId.safeParse(event.user);
  const homeOpened = event.type === "app_home_opened" && event.tab === "home" && user.success;
  if (!homeOpened) return c.body(null, 200);
  if (!(await firstDelivery(c.env.AUDIT_DB, eventId, Date.now()))) return c.body(null, 200);
  // Drawn before answering: slower than Slack's 3 s, Slack retries, and the retry is the delivery seen above.
  await publishHome(c.env, config, { user: user.data!, team: team ?? null });
  return c.body(null, 200);
});

/**
 * Records `eventId` as taken, forgetting those older than EVENT_ID_KEPT_MS in the same batch: true the first time,
 * false for a retry (or a replay within the hour). D1 unavailable answers 503, and Slack delivers again later.
 */
async function firstDelivery(db: D1Database, eventId: string, now: number): Promise<boolean> {
  try {
    const [, inserted] = await db.batch([
      db.prepare("DELETE FROM slack_events_seen WHERE at_ms < ?1").bind(now - EVENT_ID_KEPT_MS),
      db
        .prepare("INSERT INTO slack_events_seen (event_id, at_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .bind(eventId, now),
    ]);
    return (inserted?.meta.changes ?? 0) > 0;
  } catch {
    throw new ApiError(
      503,
      "unavailable",
      "the event could not be recorded just now; Slack will deliver it again",
      [],
      {
        "retry-after": "60",
      },
    );
  }
}
