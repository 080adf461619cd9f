import { Hono } from "hono";
import { DurableObject } from "cloudflare:workers";
const app = new Hono<{ Bindings: Env }>();
app.get("/healthz", (c) => c.json({ ok: true }));
export class ProposalObject extends DurableObject<Env> {
  ping() { return "pong"; }
}
export default app;
