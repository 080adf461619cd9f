// One loopback peer per test file: vitest.config.ts starts one each time the pool starts a file's workerd (files are
// isolated, each in a Miniflare of its own, whose bindings point at its own peer), and global-setup.ts stops them all
// when the run ends. A file's Worker can reach no other file's peer, so files may run side by side and their
// recordings still never mix. Each peer runs in a worker thread (thread.ts): the vitest main thread, busy serving
// modules to the other file's workerd, cannot delay what a peer records or how long it holds a response.
import { once } from "node:events";
import { Worker } from "node:worker_threads";

// vitest loads its config and the global setup as two module instances: the running peers live on globalThis.
const RUNNING = Symbol.for("signoff.test.peers");

function running(): Set<Worker> {
  const global = globalThis as { [RUNNING]?: Set<Worker> };
  global[RUNNING] ??= new Set();
  return global[RUNNING];
}

/** Starts a peer for the file whose Miniflare is being set up, and returns its port. */
export async function startFilePeer(): Promise<number> {
  const thread = new Worker(new URL("./thread.ts", import.meta.url));
  running().add(thread);
  const [port] = (await once(thread, "message")) as [number];
  return port;
}

export async function stopFilePeers(): Promise<void> {
  const threads = [...running()];
  running().clear();
  await Promise.all(
    threads.map((thread) => {
      const exited = once(thread, "exit");
      thread.postMessage("stop");
      return exited;
    }),
  );
}
