// Starts the loopback peer (stand-in Slack / runner / callback listener) for the whole test run.
import type { TestProject } from "vitest/node";
import { startPeer } from "./server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    peerPort: number;
  }
}

export default async function setup(project: TestProject) {
  const { server, port } = await startPeer();
  project.provide("peerPort", port);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
