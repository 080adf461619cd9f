// POLICY `adapters.alertmanager.routes` (docs/alertmanager.md): checked when the policy loads like every other field
// (unknown fields with a suggestion, every template, every regex, the action each names), then matched and rendered.
import { describe, expect, it } from "vitest";
import { type AlertFields, renderRoute, routeFor, TEXT_DEFAULTS } from "../src/config/alert-routes.ts";
import { parsePolicy } from "../src/config/policy.ts";
import { POLICY } from "./fixtures.ts";
import { problemsOf } from "./helpers/config-problems.ts";

const AT = "POLICY.adapters.alertmanager.routes[0]";

function withRoutes(...routes: unknown[]) {
  return { ...POLICY, adapters: { alertmanager: { routes } } };
}

const problems = (input: unknown) => problemsOf(() => parsePolicy(input));

const route = (overrides: Record<string, unknown> = {}) => ({
  match: { alertname: "KubePodOOMKilled" },
  action: "k8s.rollout_restart",
  params: { deployment: "{{ labels.deployment }}" },
  ...overrides,
});

const alert = (labels: Record<string, string>, annotations: Record<string, string> = {}): AlertFields => ({
  labels,
  annotations,
  fingerprint: "a1b2c3d4e5f60718",
  startsAt: "2026-12-01T14:02:03Z",
  generatorURL: "http://prometheus:9090/graph",
  externalURL: "http://alertmanager:9093",
});

describe("parsing adapters.alertmanager.routes", () => {
  it("applies the defaults: texts from the annotations of the same purpose; no adapters, no routes", () => {
    const [parsed] = parsePolicy(withRoutes(route())).adapters.alertmanager.routes;
    expect(parsed).toEqual({
      match: { alertname: "KubePodOOMKilled" },
      match_re: {},
      action: "k8s.rollout_restart",
      params: { deployment: "{{ labels.deployment }}" },
      ...TEXT_DEFAULTS,
      requested_by: null,
      ttl_seconds: null,
      group: false,
    });
    const { adapters: _, ...noAdapters } = POLICY;
    expect(parsePolicy(noAdapters).adapters.alertmanager.routes).toEqual([]);
  });

  it("group (one grouped card per Alertmanager group) is a boolean, false unless set", () => {
    expect(parsePolicy(withRoutes(route({ group: true }))).adapters.alertmanager.routes[0]!.group).toBe(true);
    expect(problems(withRoutes(route({ group: "yes" })))).toContainEqual({
      path: `${AT}.group`,
      message: "must be true or false, not a string",
    });
  });

  it("refuses unknown fields with a suggestion, at every level", () => {
    expect(problems({ ...POLICY, adapter: {} })).toContainEqual({
      path: "POLICY.adapter",
      message: 'unknown field (did you mean "adapters"?)',
    });
    expect(problems({ ...POLICY, adapters: { alertmanger: { routes: [] } } })).toContainEqual({
      path: "POLICY.adapters.alertmanger",
      message: 'unknown field (did you mean "alertmanager"?)',
    });
    expect(problems(withRoutes(route({ sumary: "x" })))).toContainEqual({
      path: `${AT}.sumary`,
      message: 'unknown field (did you mean "summary"?)',
    });
  });

  it("checks every template: unknown fields with a suggestion, unclosed braces, in params too", () => {
    const details = problems(
      withRoutes(
        route({
          params: { deployment: "{{ label.deployment }}", nested: ["{{ labels.ok }}", { x: "{{ fingerprnt }}" }] },
          summary: "Restart {{ labels.deployment",
          reason: "{{ annotations.description }} {{ value }}",
        }),
      ),
    );
    const byPath = Object.fromEntries(details.map((d) => [d.path, d.message]));
    expect(byPath[`${AT}.params.deployment`]).toMatch(
      /\{\{ label\.deployment \}\} .*did you mean "\{\{ labels\.deployment \}\}"/,
    );
    expect(byPath[`${AT}.params.nested[1].x`]).toMatch(/did you mean "\{\{ fingerprint \}\}"/);
    expect(byPath[`${AT}.summary`]).toMatch(/unclosed/);
    expect(byPath[`${AT}.reason`]).toMatch(/\{\{ value \}\} is not a field of the alert/);
    expect(byPath[`${AT}.params.nested[0]`]).toBeUndefined();
  });

  it("refuses an action not in the policy (with a suggestion), a verification prompt, a requester_only action (whoever writes alerts would choose who confirms), a bad regex", () => {
    const policy = {
      ...POLICY,
      actions: { ...POLICY.actions, "sec.was_this_you": { kind: "verify", requester_only: true } },
    };
    const details = problems({
      ...policy,
      adapters: {
        alertmanager: {
          routes: [
            route({ action: "k8s.rollout_restrt" }),
            route({ action: "sec.was_this_you" }),
            route({ match: {}, match_re: { alertname: "Kube(" } }),
            route({ match: { severity: "critical" } }),
            route({ action: "demo.echo", params: {}, requested_by: "U0BOB" }),
            route({ ttl_seconds: 7200 }),
          ],
        },
      },
    });
    const at = (i: number, field: string) => `POLICY.adapters.alertmanager.routes[${i}].${field}`;
    expect(details).toEqual(
      expect.arrayContaining([
        {
          path: at(0, "action"),
          message: 'k8s.rollout_restrt is not in the policy\'s actions (did you mean "k8s.rollout_restart"?)',
        },
        { path: at(1, "action"), message: "sec.was_this_you is a verification prompt: routes propose approvals" },
        { path: at(2, "match_re.alertname"), message: "is not a valid regular expression" },
        { path: at(3, "match"), message: "name the alert: match.alertname (or match_re.alertname)" },
        {
          path: at(4, "action"),
          message:
            "demo.echo is requester_only (its requester confirms alone): an alert cannot say who asked; route to an action others approve",
        },
        { path: at(5, "ttl_seconds"), message: "is more than k8s.rollout_restart's max_ttl_seconds (3600)" },
      ]),
    );
    expect(details).toHaveLength(6);
  });
});

describe("routeFor and renderRoute", () => {
  const routes = parsePolicy(POLICY).adapters.alertmanager.routes;

  it("matches labels exactly, match_re anchored to the whole value; the first route wins", () => {
    expect(routeFor(routes, { alertname: "KubePodOOMKilled", severity: "critical" })?.index).toBe(0);
    expect(routeFor(routes, { alertname: "KubePodOOMKilled", severity: "warning" })).toBeNull();
    expect(routeFor(routes, { alertname: "PostgresReplicaDown" })?.index).toBe(1);
    // Anchored: a name that merely contains the pattern does not match.
    expect(routeFor(routes, { alertname: "PostgresPrimaryDownSoon" })).toBeNull();
    expect(routeFor(routes, { alertname: "XPostgresPrimaryDown" })).toBeNull();
  });

  it("renders every template from the alert; an empty or absent field is missing, all of them named", () => {
    const [restart, failover] = routes;
    const rendered = renderRoute(failover!, alert({ cluster: "pg-main" }, { description: "primary down" }));
    expect(rendered).toEqual({
      ok: true,
      body: {
        action: { type: "db.failover", params: { cluster: "pg-main" } },
        summary: "Fail over pg-main",
        reason: "primary down (http://prometheus:9090/graph)",
        blast_radius: "writes to pg-main pause for about 30 s",
        rollback: "fail back once the old primary is healthy",
        ttl_seconds: 900,
      },
    });
    expect(renderRoute(restart!, alert({ deployment: "" }))).toEqual({
      ok: false,
      missing: ["annotations.blast_radius", "annotations.description", "labels.deployment"],
    });
  });
});
