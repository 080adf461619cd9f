// POST /v1/adapters/alertmanager (contract §4): Alertmanager's webhook payload (version 4) as its documentation shows
// it. Firing alerts a route matches become proposals through POST /v1/proposals' own checks, once per alert instance
// however often the group is re-sent; a resolved alert cancels its pending proposal, saying so on the card and in the
// audit log; an alert no route matches is skipped, one a template cannot fill is refused, and the others go ahead.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { alertGroupKey, RESOLVED_REASON } from "../src/api/alertmanager.ts";
import worker from "../src/index.ts";
import { POLICY, TOKENS } from "./fixtures.ts";
import { auditOf, BASE, call, click, createdThisTest, getProposal, json, settle } from "./helpers/api.ts";
import { expectError } from "./helpers/contract.ts";
import { groupCardCalls, groupOf, settleAll } from "./helpers/group.ts";
import { policyEnv } from "./helpers/policy-env.ts";
import { peer } from "./peer/client.ts";

type Json = Record<string, any>;

const randomHex = (length: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(length / 2)), (b) => b.toString(16).padStart(2, "0")).join("");

/** One alert as Alertmanager sends it; a fresh fingerprint each time, so tests never share a proposal. */
function alert(labels: Record<string, string>, annotations: Record<string, string> = {}, status = "firing"): Json {
  return {
    status,
    labels,
    annotations,
    startsAt: "2026-12-01T14:02:03.123456789Z",
    endsAt: status === "firing" ? "0001-01-01T00:00:00Z" : "2026-12-01T14:20:00.5Z",
    generatorURL: "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
    fingerprint: randomHex(16),
  };
}

const oom = (deployment: string) =>
  alert(
    { alertname: "KubePodOOMKilled", severity: "critical", namespace: "prod", deployment },
    {
      description: `OOMKilled x4 in 5m on ${deployment}-7f9`,
      blast_radius: "1 of 6 replicas at a time, prod",
    },
  );

const dbDown = (cluster: string) =>
  alert({ alertname: "PostgresPrimaryDown", severity: "page", cluster }, { description: `${cluster} primary is down` });

/** The group as Alertmanager's webhook_config posts it (payload version 4). */
function group(alerts: Json[], status?: string): Json {
  return {
    version: "4",
    groupKey: '{}/{severity=~"critical|page"}:{alertname="KubePodOOMKilled"}',
    truncatedAlerts: 0,
    status: status ?? (alerts.every((a) => a.status === "resolved") ? "resolved" : "firing"),
    receiver: "signoff",
    groupLabels: { alertname: "KubePodOOMKilled" },
    commonLabels: { namespace: "prod" },
    commonAnnotations: {},
    externalURL: "http://alertmanager.example.com:9093",
    alerts,
  };
}

const resolved = (a: Json): Json => ({ ...a, status: "resolved", endsAt: "2026-12-01T14:20:00.5Z" });

async function send(payload: unknown, token: string | null = TOKENS.writer): Promise<Response> {
  return call("/v1/adapters/alertmanager", { body: payload, token });
}

/** The same POST under other bindings (a policy with more actions and routes), as the writer key. */
async function sendUnder(bindings: Cloudflare.Env, payload: unknown): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${BASE}/v1/adapters/alertmanager`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKENS.writer}`, "content-type": "application/json" },
    body: JSON.stringify(payload),
  });
  const res = await worker.fetch!(request as Request<unknown, IncomingRequestCfProperties>, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

async function sendOk(payload: unknown, token?: string, bindings?: Cloudflare.Env): Promise<Json> {
  const res = bindings ? await sendUnder(bindings, payload) : await send(payload, token);
  const body = await json(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  for (const a of body.alerts) if (a.proposal_id) createdThisTest.add(a.proposal_id);
  return body;
}

describe("POST /v1/adapters/alertmanager", () => {
  it("a firing group of several alerts: one proposal each, through the policy's routes and templates", async () => {
    const alerts = [oom("api"), oom("web"), dbDown("pg-main")];
    const body = await sendOk(group(alerts));
    expect(body.counts).toEqual({ created: 3, existing: 0, cancelled: 0, skipped: 0, refused: 0 });
    expect(body.alerts.map((a: Json) => [a.fingerprint, a.outcome, a.route, a.proposal_status])).toEqual([
      [alerts[0]!.fingerprint, "created", 0, "pending"],
      [alerts[1]!.fingerprint, "created", 0, "pending"],
      [alerts[2]!.fingerprint, "created", 1, "pending"],
    ]);
    const [api, , db] = await Promise.all(body.alerts.map((a: Json) => getProposal(a.proposal_id)));
    expect(api).toMatchObject({
      action: { type: "k8s.rollout_restart", params: { deployment: "api" } },
      summary: "Restart deployment api (rolling)",
      reason: "OOMKilled x4 in 5m on api-7f9", // annotations.description, the default
      blast_radius: "1 of 6 replicas at a time, prod", // annotations.blast_radius, the default
      rollback: "kubectl rollout undo deployment/api",
      created_by: "alertmanager",
      metadata: { alertmanager: { fingerprint: alerts[0]!.fingerprint, alertname: "KubePodOOMKilled" } },
    });
    expect(db).toMatchObject({
      action: { type: "db.failover", params: { cluster: "pg-main" } },
      reason: `pg-main primary is down (${alerts[2]!.generatorURL})`,
      blast_radius: "writes to pg-main pause for about 30 s",
    });
    // The route's ttl_seconds (900) instead of the action's default (600).
    expect(Date.parse(db.expires_at) - Date.parse(db.created_at)).toBe(900_000);
    for (const a of body.alerts) await settle(a.proposal_id);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(3);
  });

  it("the same group re-sent (even with a changed description) posts no second card", async () => {
    const alerts = [oom("api"), dbDown("pg-main")];
    const first = await sendOk(group(alerts));
    for (const a of first.alerts) await settle(a.proposal_id);
    const again = await sendOk(group(alerts));
    expect(again.counts).toMatchObject({ created: 0, existing: 2 });
    expect(again.alerts.map((a: Json) => a.proposal_id)).toEqual(first.alerts.map((a: Json) => a.proposal_id));
    // Alertmanager re-sends with the annotations as they are now: the first proposal stands.
    const moved = { ...alerts[0]!, annotations: { ...alerts[0]!.annotations, description: "OOMKilled x9 in 5m" } };
    const third = await sendOk(group([moved]));
    expect(third.alerts[0]).toMatchObject({ outcome: "existing", proposal_id: first.alerts[0].proposal_id });
    expect(third.alerts[0].reason).toMatch(/card keeps the first/);
    for (const a of first.alerts) await settle(a.proposal_id);
    expect(await peer.slackCalls("chat.postMessage")).toHaveLength(2);
    const events = await auditOf(first.alerts[0].proposal_id);
    expect(events.filter((e) => e.type === "proposal.created")).toHaveLength(1);
  });

  it("a resolved group cancels its pending proposals; the card and the audit log say it resolved", async () => {
    const alerts = [oom("api"), oom("web")];
    const first = await sendOk(group(alerts));
    for (const a of first.alerts) await settle(a.proposal_id);
    const body = await sendOk(group(alerts.map(resolved)));
    expect(body.counts).toMatchObject({ cancelled: 2 });
    expect(body.alerts.map((a: Json) => a.proposal_id)).toEqual(first.alerts.map((a: Json) => a.proposal_id));
    const id = first.alerts[0].proposal_id;
    await settle(id);
    expect(await getProposal(id)).toMatchObject({
      status: "cancelled",
      decision: { by: "key:alertmanager", outcome: "cancelled", reason: RESOLVED_REASON },
    });
    const cancelled = (await auditOf(id)).find((e) => e.type === "proposal.cancelled");
    expect(cancelled).toMatchObject({ actor: "key:alertmanager", details: { reason: RESOLVED_REASON } });
    const card = JSON.stringify((await peer.slackCalls("chat.update")).map((u) => u.blocks));
    expect(card).toContain("Cancelled");
    expect(card).toContain(RESOLVED_REASON);
    // Sent again, nothing changes: its proposal is already settled.
    const again = await sendOk(group(alerts.map(resolved)));
    expect(again.alerts[0]).toMatchObject({ outcome: "skipped", proposal_id: id, proposal_status: "cancelled" });
  });

  it("an alert resolved after someone decided cancels nothing: the decision stands", async () => {
    const a = oom("api");
    const first = await sendOk(group([a]));
    const id = first.alerts[0].proposal_id;
    await settle(id);
    expect((await click("approve", id, "U0ALICE")).status).toBe(200);
    await settle(id);
    const body = await sendOk(group([resolved(a)]));
    expect(body.alerts[0]).toMatchObject({ outcome: "skipped", proposal_id: id, proposal_status: "succeeded" });
    expect(body.alerts[0].reason).toMatch(/settled before the alert resolved/);
    expect((await getProposal(id)).status).toBe("succeeded");
  });

  it("an unknown alertname is counted and skipped (200); a resolved alert never proposed is skipped too", async () => {
    const unknown = alert({ alertname: "DiskAlmostFull", severity: "critical", deployment: "api" });
    const notCritical = alert({ alertname: "KubePodOOMKilled", severity: "warning", deployment: "api" });
    const body = await sendOk(group([unknown, oom("api"), notCritical, resolved(oom("web"))]));
    expect(body.counts).toEqual({ created: 1, existing: 0, cancelled: 0, skipped: 3, refused: 0 });
    expect(body.alerts[0]).toMatchObject({ outcome: "skipped", route: null, reason: "matches no route" });
    expect(body.alerts[0].proposal_id).toBeNull();
    expect(body.alerts[2]).toMatchObject({ outcome: "skipped", route: null });
    expect(body.alerts[3]).toMatchObject({
      outcome: "skipped",
      route: 0,
      reason: "no proposal was made for this alert",
    });
  });

  it("an alert whose template needs a missing label is refused with a reason; the others go ahead", async () => {
    const noDeployment = alert({ alertname: "KubePodOOMKilled", severity: "critical" }, { description: "x" });
    const badDeployment = oom("API_Not_A_Name");
    const noAnnotation = alert({ alertname: "KubePodOOMKilled", severity: "critical", deployment: "web" });
    const body = await sendOk(group([noDeployment, oom("api"), badDeployment, noAnnotation]));
    expect(body.counts).toEqual({ created: 1, existing: 0, cancelled: 0, skipped: 0, refused: 3 });
    expect(body.alerts[0]).toMatchObject({ outcome: "refused", proposal_id: null });
    expect(body.alerts[0].reason).toContain("labels.deployment");
    expect(body.alerts[1].outcome).toBe("created");
    // Rendered, then checked as POST /v1/proposals checks a body: the params_schema refuses this deployment name.
    expect(body.alerts[2]).toMatchObject({ outcome: "refused", details: [{ path: "action.params.deployment" }] });
    expect(body.alerts[3].reason).toContain("annotations.blast_radius");
    expect(body.alerts[3].reason).toContain("annotations.description");
  });

  it("a key's action patterns apply: an action it may not propose is refused for that alert alone", async () => {
    // The "ci" key may propose k8s.rollout_restart only.
    const body = await sendOk(group([oom("api"), dbDown("pg-main")]), TOKENS.other);
    expect(body.alerts[0]).toMatchObject({ outcome: "created" });
    expect(body.alerts[1]).toMatchObject({ outcome: "refused", details: [{ path: "action.type" }] });
    expect((await getProposal(body.alerts[0].proposal_id)).created_by).toBe("ci");
  });

  it("a passing fault (Slack cannot list a requesters group) is a 503 to retry; the re-sent group makes no duplicate", async () => {
    // An action whose requested_by must be one of its requesters (a group among them), and a route that names one.
    const bindings = policyEnv(
      { "k8s.annotate": { approvers: ["U0ALICE"], requesters: ["U0BOB", "S0REQUESTERS"] } },
      {
        adapters: {
          alertmanager: {
            routes: [
              ...POLICY.adapters.alertmanager.routes,
              {
                match: { alertname: "AnnotateRequested" },
                action: "k8s.annotate",
                params: { note: "{{ annotations.summary }}" },
                requested_by: "{{ labels.requester }}",
                summary: "Annotate for {{ labels.requester }}",
                reason: "an alert asked for it",
                blast_radius: "one annotation",
                rollback: "remove the annotation",
              },
            ],
          },
        },
      },
    );
    const annotate = alert({ alertname: "AnnotateRequested", requester: "U0MALLORY" }, { summary: "hello" });
    const alerts = [oom("api"), annotate];
    // One group to ask about (S0REQUESTERS), and Slack failing once.
    await peer.script("/slack/api/usergroups.users.list", [{ status: 500 }]);
    const res = await sendUnder(bindings, group(alerts));
    expect(res.headers.get("retry-after")).toMatch(/^[1-9][0-9]*$/);
    const refused = await expectError(res, 503, ["alerts[1]"]);
    expect(refused.error.code).toBe("retry_later");
    // Alertmanager sends the group again: the first alert's proposal is the same one, the second is now answered.
    const again = await sendOk(group(alerts), undefined, bindings);
    expect(again.alerts[0].outcome).toBe("existing");
    expect(again.alerts[1]).toMatchObject({ outcome: "refused", details: [{ path: "requested_by" }] });
    expect(again.alerts[1].reason).toMatch(/may not be named as requested_by/);
  });

  it("a malformed payload is a 400 naming the field, and creates nothing", async () => {
    const a = oom("api");
    const cases: [unknown, string][] = [
      [{ ...group([a]), version: "3" }, "version"],
      [group([{ ...a, fingerprint: undefined }]), "alerts[0].fingerprint"],
      [group([{ ...a, status: "pending" }]), "alerts[0].status"],
      [group([{ ...a, labels: { alertname: 1 } }]), "alerts[0].labels.alertname"],
      [{ ...group([a]), alerts: undefined }, "alerts"],
      [group([{ ...a, startsAt: "yesterday" }]), "alerts[0].startsAt"],
    ];
    for (const [payload, field] of cases) await expectError(await send(payload), 400, [field]);
    const again = await sendOk(group([a]));
    expect(again.alerts[0].outcome).toBe("created");
  });

  it("refuses a missing or bad key (401 with WWW-Authenticate) and a key without proposals:write (403)", async () => {
    const missing = await send(group([oom("api")]), null);
    await expectError(missing, 401);
    expect(missing.headers.get("www-authenticate")).toBe('Bearer realm="signoff"');
    const bad = await send(group([oom("api")]), "so_not_a_real_token_000000000000000000000");
    await expectError(bad, 401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const reader = await send(group([oom("api")]), TOKENS.reader);
    await expectError(reader, 403);
    expect(reader.headers.get("www-authenticate")).toContain('scope="proposals:write"');
  });

  it("never decides: whatever it is sent, its proposals stay pending or end cancelled", async () => {
    const a = oom("api");
    const sends = [group([a]), group([a]), group([resolved(a)]), group([a]), group([resolved(a)])];
    let id: string | undefined;
    for (const payload of sends) {
      const body = await sendOk(payload);
      id ??= body.alerts[0].proposal_id;
      const status = (await getProposal(id!)).status;
      expect(["pending", "cancelled"]).toContain(status);
    }
    const events = await auditOf(id!);
    expect(events.map((e) => e.type)).not.toContain("approval.recorded");
    expect(events.every((e) => e.actor === "key:alertmanager" || e.actor === "system")).toBe(true);
  });
});

describe("a route with group: true", () => {
  it("puts the alerts of one Alertmanager group on one grouped card; a route without it keeps a card each", async () => {
    const [oomRoute, ...rest] = POLICY.adapters.alertmanager.routes;
    const bindings = policyEnv({}, { adapters: { alertmanager: { routes: [{ ...oomRoute, group: true }, ...rest] } } });
    const payload = group([oom("api"), oom("web"), oom("worker"), dbDown("pg-main")]);
    const body = await sendOk(payload, undefined, bindings);
    expect(body.counts.created).toBe(4);
    const ids: string[] = body.alerts.map((a: Json) => a.proposal_id);
    const key = alertGroupKey(payload.groupKey);
    expect(key).toMatch(/^alertmanager:[0-9a-f]{32}$/);
    for (const id of ids.slice(0, 3)) expect((await getProposal(id)).group_key).toBe(key);
    expect((await getProposal(ids[3]!)).group_key).toBeUndefined();
    await settleAll(ids.slice(0, 3), groupOf(key));
    await settle(ids[3]!);
    // One grouped card for the three restarts, and the failover's own card.
    const posts = await peer.slackCalls("chat.postMessage");
    expect(posts).toHaveLength(2);
    const { posts: grouped, updates } = await groupCardCalls();
    expect(grouped).toHaveLength(1);
    expect((updates.at(-1) ?? grouped[0])!.text).toBe("Approval needed: 3 × k8s.rollout_restart: api, web, worker");
  });
});
