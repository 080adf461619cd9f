// The bench's baseline: one Hono route for any POST path (the Slack interactions route, proposal creation),
// reading the same body and answering an empty 200 — everything a request costs minus signoff's own work. And,
// for the memory phase, the least a Durable Object can be: POST /__object/<name> wakes the object of that name,
// which writes one row to its SQLite database, so what workerd itself keeps per object can be told apart.
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

export class BareObject extends DurableObject {
  touch(): number {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)");
    this.ctx.storage.sql.exec("INSERT INTO t (k, v) VALUES (1, 1) ON CONFLICT (k) DO UPDATE SET v = v + 1");
    return 1;
  }
}

const app = new Hono<{ Bindings: { BARE_OBJECT: DurableObjectNamespace<BareObject> } }>();

app.post("/__object/:name", async (c) => {
  await c.env.BARE_OBJECT.getByName(c.req.param("name")).touch();
  return c.body(null, 200);
});

app.post("*", async (c) => {
  await c.req.arrayBuffer();
  return c.body(null, 200);
});

export default app;
