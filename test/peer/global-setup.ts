// Stops the loopback peers (stand-in Slack / runner / callback listener) that vitest.config.ts started, one per test
// file (peer/pool.ts), when the whole run ends.
import { stopFilePeers } from "./pool.ts";

export default function setup() {
  return stopFilePeers;
}
