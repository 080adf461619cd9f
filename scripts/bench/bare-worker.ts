// The bench's baseline: one Hono route for any POST path (the Slack interactions route, proposal creation),
// reading the same body and answering an empty 200 — everything a request costs minus signoff's own work.
import { Hono } from "hono";

const app = new Hono();

app.post("*", async (c) => {
  await c.req.arrayBuffer();
  return c.body(null, 200);
});

export default app;
