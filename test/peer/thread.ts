// Runs one loopback peer (server.ts) in a worker thread of its own, so the times it records and the delays it
// scripts run on a clock no busy vitest main thread can hold back (pool.ts starts one per test file).
import { parentPort } from "node:worker_threads";
import { startPeer } from "./server.ts";

const { server, port } = await startPeer();
parentPort!.postMessage(port);
parentPort!.once("message", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
