// What tests (inside workerd) use to drive and read the loopback peer.
import { env } from "cloudflare:workers";
import type { RecordedRequest, ScriptedResponse } from "./server.ts";

const base = () => env.TEST_PEER;

export const peer = {
  async reset(): Promise<void> {
    await fetch(`${base()}/__peer/reset`, { method: "POST" });
  },
  async requests(pathPrefix = ""): Promise<RecordedRequest[]> {
    const res = await fetch(`${base()}/__peer/requests?path=${encodeURIComponent(pathPrefix)}`);
    return (await res.json()) as RecordedRequest[];
  },
  async script(path: string, responses: ScriptedResponse[]): Promise<void> {
    await fetch(`${base()}/__peer/script`, { method: "POST", body: JSON.stringify({ path, responses }) });
  },
  /** Slack Web API calls of one method, with their parsed JSON or form body. */
  async slackCalls(method: string): Promise<Array<Record<string, unknown>>> {
    const calls = await this.requests(`/slack/api/${method}`);
    return calls.map((call) => {
      if ((call.headers["content-type"] ?? "").includes("application/json")) return JSON.parse(call.body);
      return Object.fromEntries(new URLSearchParams(call.body));
    });
  },
};

export type { RecordedRequest, ScriptedResponse };
