// Edit before approve (issue 17), in workerd through Slack's real path: an approver opens Edit on the card, changes
// editable params in the modal; the plan hash changes, earlier approvals are voided, the card shows old → new and who,
// the proposer gets proposal.edited, the audit log holds both plans, and the runner receives only the approved plan.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { actionsBlockId, renderCard } from "../src/slack/card.ts";
import { EDIT_ACTIONS } from "./fixtures.ts";
import { auditOf, click, clickPayload, getProposal, settle, slackRequest } from "./helpers/api.ts";
import { clickAll, groupOf, groupRefOf, lastGroupCard, settleAll, settleGroup } from "./helpers/group.ts";
import { actionProblems, createIn, policyEnv } from "./helpers/policy-env.ts";
import { EXPIRES_AT, makeProposal } from "./helpers/proposal-factory.ts";
import { peer } from "./peer/client.ts";

const editable = policyEnv(EDIT_ACTIONS);
const resize = (replicas: number, extra: Record<string, unknown> = {}) => ({
  action: { type: "k8s.resize", params: { deployment: "api", replicas } },
  summary: `Resize api to ${replicas} replicas`,
  ...extra,
});

function editButton(proposalId: string, user: string) {
  return slackRequest({
    type: "block_actions",
    user: { id: user },
    trigger_id: "123.456.abc",
    channel: { id: "C0INCIDENT" },
    container: { type: "message", channel_id: "C0INCIDENT" },
    actions: [{ action_id: "signoff.edit", value: proposalId, type: "button" }],
  });
}

/** An Approve from the card as it is drawn now: once edited, its buttons carry the plan in force (card.ts). */
async function approveAsDrawn(proposalId: string, user: string) {
  const blockId = actionsBlockId((await getProposal(proposalId)) as never);
  const payload = clickPayload("approve", proposalId, user);
  return slackRequest({ ...payload, actions: [{ ...payload.actions[0]!, block_id: blockId }] });
}

/** Submits the Edit modal as `user` with these field texts; the modal's errors, or null when it closed. */
async function submitEdit(p: Record<string, any>, user: string, fields: Record<string, string | null>) {
  const values = Object.fromEntries(
    Object.entries(fields).map(([param, value]) => [`param:${param}`, { value: { type: "plain_text_input", value } }]),
  );
  const res = await slackRequest({
    type: "view_submission",
    user: { id: user },
    view: { callback_id: "signoff.edit_params", private_metadata: `${p.id} ${p.plan_sha256}`, state: { values } },
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  return text === "" ? null : (JSON.parse(text) as { response_action: string; errors: Record<string, string> });
}

describe("editable_params and edit_schema in the policy", () => {
  const problems = actionProblems;
  const schema = { type: "object", properties: { replicas: { type: "integer" }, note: { type: "string" } } };
  const at = (field: string) => `POLICY.actions["k8s.x"].${field}`;

  it("each name must be a property of params_schema (with a did-you-mean), once; edit_schema must be a usable schema", () => {
    expect(
      problems({ approvers: ["U0ALICE"], params_schema: schema, editable_params: ["replica", "note", "note"] }),
    ).toEqual([
      { path: at("editable_params[2]"), message: "is listed twice" },
      { path: at("editable_params[0]"), message: 'is not a property of params_schema (did you mean "replicas"?)' },
    ]);
    expect(problems({ approvers: ["U0ALICE"], editable_params: ["replicas"] })).toEqual([
      {
        path: at("editable_params"),
        message: "needs a params_schema with properties: an edit is checked against it, as a new proposal would be",
      },
    ]);
    expect(
      problems({
        approvers: ["U0ALICE"],
        params_schema: schema,
        editable_params: ["note"],
        edit_schema: { maximun: 3 },
      }),
    ).toContainEqual(expect.objectContaining({ path: expect.stringContaining("edit_schema.maximun") }));
    expect(problems({ approvers: ["U0ALICE"], params_schema: schema, edit_schema: {} })).toEqual([
      { path: at("edit_schema"), message: "only with editable_params: it checks what an edit changes" },
    ]);
    expect(problems({ approvers: ["U0ALICE"], params_schema: schema, editable_param: ["note"] })).toContainEqual({
      path: at("editable_param"),
      message: 'unknown field (did you mean "editable_params"?)',
    });
  });

  it("not on a verification prompt nor a requester_only action; frozen into the proposal's rule", async () => {
    expect(problems({ kind: "verify", params_schema: schema, editable_params: ["note"] })).toContainEqual({
      path: at("editable_params"),
      message: 'does not apply to kind: "verify"',
    });
    expect(
      problems({ requester_only: true, requesters: ["U0BOB"], params_schema: schema, editable_params: ["note"] }),
    ).toContainEqual({ path: at("editable_params"), message: "a requester_only action is the requester's call alone" });
    const p = await createIn(editable, resize(8));
    expect(p.rule.edit).toEqual({
      params: ["replicas", "note"],
      params_schema: EDIT_ACTIONS["k8s.resize"].params_schema,
      schema: { properties: { replicas: { maximum: 30 } } },
      rules: ["params.replicas > 20"],
    });
  });
});

describe("the Edit button", () => {
  const edit = { params: ["replicas"], params_schema: { type: "object" }, schema: null, rules: [] };
  const buttons = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    JSON.stringify(renderCard(makeProposal({ rule, ...extra }), { role: "card" }).blocks)
      .match(/"action_id":"signoff\.[a-z_]+"/g)
      ?.map((id) => id.slice('"action_id":"signoff.'.length, -1));

  it("is offered while pending on an action with editable_params, never in a freeze, to requester_only or once decided", () => {
    expect(buttons({})).not.toContain("edit");
    expect(buttons({ edit })).toEqual(["approve", "deny", "edit", "escalate"]);
    const freeze = { name: "holidays", ends_at: EXPIRES_AT };
    const glass = { approvers: ["U0LEAD"], reason_required: true };
    expect(buttons({ edit, freeze, break_glass: glass })).not.toContain("edit");
    expect(buttons({ edit, requester_only: true, approvers: [] })).not.toContain("edit");
    expect(buttons({ edit }, { status: "denied" })).toBeUndefined();
  });
});

describe("editing on the card", () => {
  it("changes the plan hash and voids earlier approvals; the card shows old → new and who; the runner gets the edited plan", async () => {
    // 25 replicas: the risk rule asks for two approvals.
    const p = await createIn(editable, resize(25, { requested_by: "U0BOB" }));
    await settle(p.id);
    expect(JSON.stringify((await peer.slackCalls("chat.postMessage"))[0]!.blocks)).toContain("signoff.edit");
    await click("approve", p.id, "U0DAVE");
    await settle(p.id);
    expect((await getProposal(p.id)).approvals).toHaveLength(1);

    expect((await editButton(p.id, "U0ALICE")).status).toBe(200);
    const [opened] = await peer.slackCalls("views.open");
    expect(opened).toMatchObject({
      view: { callback_id: "signoff.edit_params", private_metadata: `${p.id} ${p.plan_sha256}` },
    });
    expect(JSON.stringify(opened!.view)).toContain('"initial_value":"25"');
    expect(await submitEdit(p, "U0ALICE", { replicas: "22", note: "22 is enough" })).toBeNull();
    await settle(p.id);

    const edited = await getProposal(p.id);
    expect(edited.status).toBe("pending");
    expect(edited.action.params).toEqual({ deployment: "api", replicas: 22, note: "22 is enough" });
    expect(edited.plan_sha256).not.toBe(p.plan_sha256);
    expect(edited.approvals).toEqual([]);
    expect(edited.edits).toEqual([
      expect.objectContaining({
        by: "slack:U0ALICE",
        from_plan_sha256: p.plan_sha256,
        plan_sha256: edited.plan_sha256,
        changes: [
          { param: "replicas", from: 25, to: 22 },
          { param: "note", from: null, to: "22 is enough" },
        ],
        voided_approvals: [expect.objectContaining({ user: "U0DAVE" })],
      }),
    ]);
    const card = JSON.stringify((await peer.slackCalls("chat.update")).at(-1)!.blocks);
    expect(card).toContain(":pencil2: *Edited* by <@U0ALICE>");
    expect(card).toContain("`replicas` `25` → `22`");
    expect(card).toContain("1 earlier approval no longer count");
    const audited = (await auditOf(p.id)).find((e) => e.type === "proposal.edited");
    expect(audited).toMatchObject({
      actor: "slack:U0ALICE",
      details: {
        from_plan_sha256: p.plan_sha256,
        plan_sha256: edited.plan_sha256,
        voided_approvals: ["U0DAVE"],
        changes: edited.edits[0].changes,
      },
    });

    // Dave's earlier approval no longer counts: the editor and Dave again make the two the rule asks for.
    await approveAsDrawn(p.id, "U0ALICE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    await approveAsDrawn(p.id, "U0DAVE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
    const dispatches = await peer.requests("/runner");
    expect(dispatches).toHaveLength(1);
    expect(JSON.parse(dispatches[0]!.body)).toMatchObject({
      action: { type: "k8s.resize", params: { deployment: "api", replicas: 22, note: "22 is enough" } },
      plan_sha256: edited.plan_sha256,
      approvers: ["U0ALICE", "U0DAVE"],
    });
  });

  it("the editor's approval alone does not reach M: someone who did not edit must approve", async () => {
    const p = await createIn(editable, resize(8, { requested_by: "U0BOB" }));
    await editButton(p.id, "U0ALICE");
    expect(await submitEdit(p, "U0ALICE", { replicas: "3" })).toBeNull();
    await approveAsDrawn(p.id, "U0ALICE");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect((await peer.requests("/runner")).length).toBe(0);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([["slack:U0ALICE", "edited_by_you"]]);
    await approveAsDrawn(p.id, "U0LEAD");
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
    expect(JSON.parse((await peer.requests("/runner"))[0]!.body).action.params).toEqual({
      deployment: "api",
      replicas: 3,
    });
  });

  it("an Approve on a card drawn before the edit counts nothing; the redrawn card's buttons carry the new plan", async () => {
    const p = await createIn(editable, resize(8, { requested_by: "U0BOB" }));
    await settle(p.id);
    const drawnBefore = (await peer.slackCalls("chat.postMessage"))[0]!.blocks as Array<{
      type: string;
      block_id: string;
    }>;
    const staleBlock = drawnBefore.find((b) => b.type === "actions")!.block_id;
    expect(await submitEdit(p, "U0ALICE", { replicas: "3" })).toBeNull();
    await settle(p.id);
    const approveOn = (blockId: string) =>
      slackRequest({
        ...clickPayload("approve", p.id, "U0DAVE"),
        actions: [{ action_id: "signoff.approve", block_id: blockId, value: p.id, type: "button" }],
      });
    await approveOn(staleBlock);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    const refused = (await auditOf(p.id)).filter((e) => e.type === "click.refused");
    expect(refused.map((e) => [e.actor, e.details.code])).toEqual([["slack:U0DAVE", "changed"]]);
    const redrawn = (await peer.slackCalls("chat.update")).at(-1)!.blocks as Array<{ type: string; block_id: string }>;
    const fresh = redrawn.find((b) => b.type === "actions")!.block_id;
    expect(fresh).toBe(`signoff.actions.${(await getProposal(p.id)).plan_sha256}`);
    await approveOn(fresh);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
  });

  it("a param outside editable_params, or an edit_schema violation, is refused in the modal and changes nothing", async () => {
    const p = await createIn(editable, resize(8, { requested_by: "U0BOB" }));
    expect(await submitEdit(p, "U0ALICE", { deployment: "web", replicas: "8" })).toEqual({
      response_action: "errors",
      errors: { "param:deployment": "Only replicas, note can be edited on k8s.resize; not deployment." },
    });
    // params_schema allows 40; the action's edit_schema says at most 30.
    expect(await submitEdit(p, "U0ALICE", { replicas: "40" })).toEqual({
      response_action: "errors",
      errors: { "param:replicas": expect.stringMatching(/30/) },
    });
    expect(await submitEdit(p, "U0ALICE", { replicas: "many" })).toEqual({
      response_action: "errors",
      errors: { "param:replicas": "must be a whole number" },
    });
    await settle(p.id);
    const after = await getProposal(p.id);
    expect(after.action.params).toEqual({ deployment: "api", replicas: 8 });
    expect(after.plan_sha256).toBe(p.plan_sha256);
    expect(after.edits).toBeUndefined();
    const codes = (await auditOf(p.id)).filter((e) => e.type === "edit.refused").map((e) => e.details.code);
    expect(codes).toEqual(["not_an_editable_param", "invalid_params", "invalid_params"]);
  });

  it("the requester cannot edit (no modal, told why); nor anyone once it is decided", async () => {
    const p = await createIn(editable, resize(8, { requested_by: "U0DAVE" }));
    await editButton(p.id, "U0DAVE");
    await settle(p.id);
    expect(await peer.slackCalls("views.open")).toEqual([]);
    const told = (await peer.slackCalls("chat.postEphemeral")).map((call) => String(call.text));
    expect(told.some((text) => /its requester may not/.test(text))).toBe(true);
    expect(await submitEdit(p, "U0DAVE", { replicas: "3" })).toMatchObject({
      errors: { "param:replicas": /requester/ },
    });
    await click("approve", p.id, "U0ALICE");
    await settle(p.id);
    expect(await submitEdit(p, "U0LEAD", { replicas: "3" })).toMatchObject({ errors: { "param:replicas": /Already/ } });
    await settle(p.id);
    expect((await getProposal(p.id)).action.params).toEqual({ deployment: "api", replicas: 8 });
    const codes = (await auditOf(p.id)).filter((e) => e.type === "edit.refused").map((e) => e.details.code);
    expect(codes).toEqual(["self_edit", "self_edit", "not_pending"]);
  });

  it("the proposer's callback gets proposal.edited with the diff, signed", async () => {
    const p = await createIn(editable, resize(8, { callback_url: `${env.TEST_PEER}/events/edited` }));
    expect(await submitEdit(p, "U0ALICE", { replicas: "4" })).toBeNull();
    await settle(p.id);
    const delivered = await peer.requests("/events/edited");
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.signature_valid).toBe(true);
    const event = JSON.parse(delivered[0]!.body);
    expect(event).toMatchObject({
      type: "proposal.edited",
      data: {
        id: p.id,
        status: "pending",
        action: { params: { replicas: 4 } },
        edits: [
          { by: "slack:U0ALICE", changes: [{ param: "replicas", from: 8, to: 4 }], from_plan_sha256: p.plan_sha256 },
        ],
      },
    });
    expect(
      (await auditOf(p.id)).some((e) => e.type === "notify.delivered" && e.details.event === "proposal.edited"),
    ).toBe(true);
  });
});

describe("editing an item of a grouped card", () => {
  const blocksOf = (card: string) => JSON.parse(card) as Array<{ type: string; block_id?: string }>;

  it("Approve all never approves an edit unseen: before the card heard of it, nor after; the item's own button does", async () => {
    const group = groupOf("resize-1", "k8s.resize");
    const edited = await createIn(editable, resize(5, { group_key: "resize-1" }));
    const other = await createIn(editable, resize(6, { group_key: "resize-1" }));
    await settleAll([edited.id, other.id], group);
    const ref = await groupRefOf(/2 × k8s\.resize/);

    // The edit lands in the item's object; the group's card has not been redrawn yet.
    expect(await submitEdit(edited, "U0ALICE", { replicas: "3" })).toBeNull();
    expect((await clickAll("approve", ref, "U0DAVE")).status).toBe(200);
    await settle(edited.id);
    await settle(other.id);
    expect((await getProposal(other.id)).status).toBe("succeeded");
    expect((await getProposal(edited.id)).status).toBe("pending");
    expect((await auditOf(edited.id)).find((e) => e.type === "click.refused")?.details).toMatchObject({
      code: "changed",
    });

    // Redrawn: the item's buttons carry its new plan; Approve all still leaves it to them.
    await settleAll([edited.id, other.id], group);
    const now = await getProposal(edited.id);
    const card = await lastGroupCard();
    expect(blocksOf(card).some((b) => b.block_id === `${actionsBlockId(now as never)}~0`)).toBe(true);
    expect((await clickAll("approve", ref, "U0LEAD")).status).toBe(200);
    await settle(edited.id);
    expect((await getProposal(edited.id)).status).toBe("pending");
    await settleGroup(group);
    const replies = await peer.slackCalls("chat.postEphemeral");
    expect(JSON.stringify(replies.at(-1))).toContain("approve it with its own button");

    // The item's own button, drawn on the edited plan, counts.
    const payload = clickPayload("approve", edited.id, "U0LEAD");
    (payload.actions[0] as Record<string, unknown>).block_id = `${actionsBlockId(now as never)}~0`;
    expect((await slackRequest(payload)).status).toBe(200);
    await settle(edited.id);
    expect((await getProposal(edited.id)).status).toBe("succeeded");
  });
});

describe("break-glass on an edited proposal", () => {
  const glassy = policyEnv({
    "k8s.resize_glass": {
      ...EDIT_ACTIONS["k8s.resize"],
      break_glass: { approvers: ["U0LEAD"], reason_required: true },
    },
  });
  const glassButton = (p: Record<string, any>, blockId: string) => {
    const payload = clickPayload("approve", p.id, "U0LEAD");
    return slackRequest({
      ...payload,
      actions: [{ action_id: "signoff.break_glass", block_id: blockId, value: p.id, type: "button" }],
    });
  };
  const submitGlass = (metadata: string) =>
    slackRequest({
      type: "view_submission",
      user: { id: "U0LEAD" },
      view: {
        callback_id: "signoff.break_glass_reason",
        private_metadata: metadata,
        state: { values: { reason: { reason: { type: "plain_text_input", value: "Outage: cannot wait" } } } },
      },
    });

  it("a modal opened before an edit approves nothing; nor does a card drawn before it; one drawn on the edit does", async () => {
    const p = await createIn(
      glassy,
      resize(8, {
        requested_by: "U0BOB",
        action: { type: "k8s.resize_glass", params: { deployment: "api", replicas: 8 } },
      }),
    );
    await settle(p.id);
    expect((await glassButton(p, "signoff.actions")).status).toBe(200);
    const [opened] = await peer.slackCalls("views.open");
    const metadata = (opened as { view: { private_metadata: string } }).view.private_metadata;
    expect(metadata).toBe(`${p.id} ${p.plan_sha256}`);

    // Meanwhile Alice edits the params: the modal Lead has open shows the plan before.
    expect(await submitEdit(p, "U0ALICE", { replicas: "3" })).toBeNull();
    const res = await submitGlass(metadata);
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toMatch(/edited since/);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("pending");
    expect(await peer.requests("/runner")).toHaveLength(0);
    const refused = (await auditOf(p.id)).filter((e) => e.type === "break_glass.refused");
    expect(refused.map((e) => e.details.code)).toEqual(["changed"]);

    // The card drawn before the edit does not open the modal; the redrawn one does, and its approval runs the edit.
    await glassButton(p, "signoff.actions");
    expect(await peer.slackCalls("views.open")).toHaveLength(1);
    const edited = await getProposal(p.id);
    await glassButton(p, actionsBlockId(edited as never));
    const reopened = (await peer.slackCalls("views.open")).at(-1) as { view: { private_metadata: string } };
    expect(reopened.view.private_metadata).toBe(`${p.id} ${edited.plan_sha256}`);
    expect((await submitGlass(reopened.view.private_metadata)).status).toBe(200);
    await settle(p.id);
    expect((await getProposal(p.id)).status).toBe("succeeded");
    expect(JSON.parse((await peer.requests("/runner"))[0]!.body).plan_sha256).toBe(edited.plan_sha256);
  });
});
