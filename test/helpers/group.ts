// Driving a grouped card's Durable Object (src/group/object.ts) from tests: its stub, running its jobs to the end (the
// coalescing interval is not waited out), and pressing its Approve all / Deny all as Slack would.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { type GroupStub, groupStubFor } from "../../src/group/stub.ts";
import { JobTable } from "../../src/proposal/scheduler.ts";
import { GROUP_ACTION_IDS } from "../../src/slack/group-card.ts";
import { peer } from "../peer/client.ts";
import { settle, slackRequest } from "./api.ts";

/** The group object of the writer key's (`alertmanager`) proposals of `action` under `groupKey`. */
export function groupOf(groupKey: string, action = "k8s.rollout_restart", keyName = "alertmanager"): GroupStub {
  return groupStubFor(env.GROUPS, keyName, action, groupKey);
}

/** Runs the group's jobs now (the edit interval made due), until none is left due or running. */
export async function settleGroup(group: GroupStub, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { due, running } = await runInDurableObject(group, async (_instance, state) => {
      const jobs = new JobTable(state.storage.sql);
      jobs.makeDue("slack");
      const now = Date.now();
      const list = jobs.list();
      if (list.length > 0) await state.storage.setAlarm(now);
      return {
        due: list.filter((j) => j.lease_until <= now).length,
        running: list.filter((j) => j.lease_until > now).length,
      };
    });
    if (due === 0 && running === 0) return;
    if (due > 0) await runDurableObjectAlarm(group);
    else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`settleGroup: jobs still due or running after ${timeoutMs} ms`);
}

/** Settles each proposal (its report to the group included), then the group. */
export async function settleAll(ids: readonly string[], group: GroupStub): Promise<void> {
  for (const id of ids) await settle(id);
  await settleGroup(group);
  // What the group's replies and posts set off in the members (the card's post recorded in each) settles too.
  for (const id of ids) await settle(id);
}

/** The Approve all / Deny all value of the last grouped card posted or edited in Slack whose header matches. */
export async function groupRefOf(headerMatch: RegExp): Promise<string> {
  const sent = [...(await peer.slackCalls("chat.postMessage")), ...(await peer.slackCalls("chat.update"))];
  for (const call of sent.reverse()) {
    const blocks = call.blocks as Array<Record<string, any>> | undefined;
    const header = blocks?.find((b) => b.block_id === "signoff.group.header");
    if (!header || !headerMatch.test(header.text.text)) continue;
    const actions = blocks!.find((b) => b.block_id === "signoff.group.actions");
    if (actions) return actions.elements[0].value as string;
  }
  throw new Error(`no grouped card with buttons matches ${headerMatch}`);
}

/** Presses Approve all or Deny all on the card `ref` names, as `user`, signed as Slack signs it. */
export function clickAll(kind: "approve" | "deny", ref: string, user: string, channel = "C0INCIDENT") {
  return slackRequest({
    type: "block_actions",
    user: { id: user },
    trigger_id: "123.456.abc",
    channel: { id: channel },
    container: { type: "message", channel_id: channel },
    actions: [
      {
        action_id: kind === "approve" ? GROUP_ACTION_IDS.approveAll : GROUP_ACTION_IDS.denyAll,
        value: ref,
        type: "button",
      },
    ],
  });
}

/** Every grouped card Slack was sent (posts, then edits, each in the order sent). */
export async function groupCardCalls(): Promise<{
  posts: Array<Record<string, any>>;
  updates: Array<Record<string, any>>;
}> {
  const grouped = (calls: Array<Record<string, any>>) =>
    calls.filter((c) =>
      (c.blocks as Array<Record<string, any>> | undefined)?.some((b) => b.block_id === "signoff.group.header"),
    );
  return {
    posts: grouped(await peer.slackCalls("chat.postMessage")),
    updates: grouped(await peer.slackCalls("chat.update")),
  };
}

/** The last grouped card sent (its edit, else its post), as one string of its blocks to match against. */
export async function lastGroupCard(): Promise<string> {
  const { posts, updates } = await groupCardCalls();
  const last = updates.at(-1) ?? posts.at(-1);
  if (!last) throw new Error("no grouped card was sent");
  return JSON.stringify(last.blocks);
}
