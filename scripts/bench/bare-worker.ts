// The bench's baseline: one Hono route on the same path, reading the same body, answering the
// same empty 200 — everything a click costs minus signoff's own work.
import { Hono } from "hono";

const app = new Hono();

app.post("/slack/interactions", async (c) => {
  await c.req.arrayBuffer();
  return c.body(null, 200);
});

export default app;
