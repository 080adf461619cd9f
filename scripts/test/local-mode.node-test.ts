// Local mode's identity and mail (issue 11): what `npm start` writes to .dev.vars for them, that [env.local] with
// those values is a valid configuration (Access and mail included), and that the local Access issuer's tokens pass
// the production verifier (src/identity/access.ts) over HTTP, while tokens it did not sign, or for another
// audience, do not. The whole path through the Worker and a browser is e2e/local.e2e.ts.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseEnv } from "node:util";
import { experimental_readRawConfig } from "wrangler";
import { checkConfig } from "../../src/config/check.ts";
import { parsePolicy } from "../../src/config/policy.ts";
import { ACCESS_HEADER, verifyAccess } from "../../src/identity/access.ts";
import {
  LOCAL_IDENTITY_COOKIE,
  mintAccessToken,
  newLocalAccessKey,
  parseLocalAccessKey,
  publicJwks,
  signedInEmail,
} from "../../src/local/access.ts";
import { DEMO_USERS, demoRole } from "../../src/local/demo.ts";
import { describeProblems, localProblems } from "../../src/local/diagnose.ts";
import { ensureDevVars } from "../local/stack.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const dirs: string[] = [];
const servers: Server[] = [];
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), "signoff-local-mode-"));
  dirs.push(dir);
  return dir;
};
after(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A loopback server answering every GET with `body` as JSON: where the verifier fetches the keys. */
function serveJson(body: unknown): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`);
    }),
  );
}

const NEW_SECRETS = ["LINK_SECRET", "MAIL_API_TOKEN", "LOCAL_ACCESS_KEY"];

describe("what npm start writes for links, mail and the local Access issuer", () => {
  test("a new .dev.vars gets a link secret, a mail API token and an RSA private key; an older one gets them added, nothing else changed", async () => {
    const dir = tmp();
    const fresh = join(dir, "fresh.vars");
    const made = await ensureDevVars(fresh, join(dir, "token"));
    for (const name of NEW_SECRETS) assert.ok(made.created.includes(name), made.created.join(", "));
    const vars = parseEnv(readFileSync(fresh, "utf8"));
    assert.match(vars.LINK_SECRET ?? "", /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.match(vars.MAIL_API_TOKEN ?? "", /^re_local_[0-9a-f]{48}$/);
    const key = parseLocalAccessKey(vars.LOCAL_ACCESS_KEY);
    assert.ok(key, "LOCAL_ACCESS_KEY is an RSA private JWK");
    assert.equal(key.alg, "RS256");

    // A .dev.vars from before issue 11: the three are added after what was there, which stays as it was.
    const older = join(dir, "older.vars");
    const before = readFileSync(fresh, "utf8").replace(/^(?:LINK_SECRET|MAIL_API_TOKEN|LOCAL_ACCESS_KEY)=.*\n/gm, "");
    writeFileSync(older, before);
    const again = await ensureDevVars(older, join(dir, "token"));
    assert.deepEqual(again.created, NEW_SECRETS);
    assert.ok(readFileSync(older, "utf8").startsWith(before), "an existing value changed");
    // And a third run adds nothing.
    assert.deepEqual((await ensureDevVars(older, join(dir, "token"))).created, []);
  });

  test("[env.local] with a fresh .dev.vars is a valid configuration: links, Access and mail included", async () => {
    const dir = tmp();
    await ensureDevVars(join(dir, ".dev.vars"), join(dir, "token"));
    const raw = experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") }).rawConfig as {
      env: { local: { vars: Record<string, unknown> } };
    };
    const env = { ...raw.env.local.vars, ...parseEnv(readFileSync(join(dir, ".dev.vars"), "utf8")) };
    const checked = checkConfig(env);
    assert.ok(checked.ok, JSON.stringify(checked.ok ? null : checked.problems));
    const { config } = checked;
    const byLink = config.policy.actions["demo.by_link"];
    assert.deepEqual(byLink?.links?.recipients, ["alice@example.com", "dave@example.com"]);
    assert.equal(byLink?.required_approvals, 2);
    assert.equal(config.policy.people.U0ALICE, config.policy.people["alice@example.com"]);
    assert.equal(config.access?.jwksUrl, "http://127.0.0.1:8787/__local/access/certs");
    assert.equal(config.mail?.url, "http://127.0.0.1:8787/__local/mail/api/emails");
    assert.equal(config.publicUrl, "http://localhost:8787");
    // Every action of the demo policy can run: the local runner's allowlist has each one, but the one that shows a
    // refusal (scripts/test/demo-runner-agreement.node-test.ts checks their params agree).
    const allowlist = JSON.parse(readFileSync(join(ROOT, "scripts", "local", "runner-actions.json"), "utf8")) as {
      actions: Record<string, unknown>;
    };
    assert.deepEqual(
      Object.keys(config.policy.actions)
        .filter((type) => type !== "demo.runner_refuses")
        .sort(),
      Object.keys(allowlist.actions).sort(),
    );
  });
});

describe("local mode's diagnostics (issue 13)", () => {
  const localVars = () =>
    (
      experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") }).rawConfig as {
        env: { local: { vars: Record<string, unknown> } };
      }
    ).env.local.vars;

  test('a typo in .dev.vars ("scope" for "scopes" in API_KEYS) leads with the real problem and its "did you mean", and no unrelated warning', async () => {
    const dir = tmp();
    const path = join(dir, ".dev.vars");
    await ensureDevVars(path, join(dir, "token"));
    const vars = parseEnv(readFileSync(path, "utf8"));
    const typo = (vars.API_KEYS ?? "").replace('"scopes"', '"scope"');
    assert.notEqual(typo, vars.API_KEYS);
    writeFileSync(path, readFileSync(path, "utf8").replace(vars.API_KEYS ?? "", typo));

    // npm start says nothing of LOCAL_DEMO_TOKEN (that is not the problem)…
    assert.deepEqual((await ensureDevVars(path, join(dir, "token"))).warnings, []);
    // …and the Worker's check, as npm start and the page show it, names the typo first, once, and where to fix it.
    const checked = checkConfig({ ...localVars(), ...parseEnv(readFileSync(path, "utf8")) });
    assert.equal(checked.ok, false);
    const problems = localProblems(checked.ok ? [] : [...checked.problems, ...checked.problems]);
    assert.deepEqual(problems, [
      {
        path: "API_KEYS[0].scope",
        message: 'unknown field (did you mean "scopes"? "scopes" is required)',
        fix: "in .dev.vars: restart npm start after editing it (it is read once, at start)",
      },
    ]);
    assert.equal(
      describeProblems(problems),
      [
        "signoff is misconfigured: 1 problem",
        '  API_KEYS[0].scope: unknown field (did you mean "scopes"? "scopes" is required)',
        "    (in .dev.vars: restart npm start after editing it (it is read once, at start))",
      ].join("\n"),
    );
    // A var is fixed in wrangler.toml, which wrangler reloads by itself.
    assert.match(localProblems([{ path: "POLICY.actions.x", message: "m" }])[0]!.fix, /wrangler\.toml.*reloads/);
  });

  test("each demo person's role line is read from the demo policy and is right for every demo action", () => {
    const policy = parsePolicy(localVars().POLICY);
    const role = (id: string) => demoRole(DEMO_USERS.find((u) => u.id === id)!, policy);
    const direct = "demo.echo, demo.two_person, demo.runner_refuses, demo.break_glass, k8s.rollout_restart";
    const oncall = "demo.echo, demo.two_person, demo.runner_refuses, k8s.rollout_restart";
    assert.equal(
      role("U0ALICE"),
      `approves ${direct}; approves demo.by_link by mailed link (alice@example.com); confirms their own demo.self_confirm`,
    );
    assert.equal(role("U0OSCAR"), `in S0ONCALL; approves ${oncall}; confirms their own demo.self_confirm`);
    assert.equal(
      role("U0BOB"),
      "in S0ONCALL; requests the sample proposals, so four-eyes refuses their own approval of them; " +
        `approves ${oncall}; confirms their own demo.self_confirm`,
    );
    assert.equal(
      role("U0DAVE"),
      "approves demo.two_person, demo.break_glass; approves demo.by_link by mailed link (dave@example.com)",
    );
    // Break-glass can be tried locally: carol approves demo.break_glass alone, with a reason, through its modal.
    assert.equal(
      role("U0CAROL"),
      "decides demo.echo, k8s.rollout_restart once escalated; " +
        "may break the glass on demo.break_glass: approve alone, with a reason",
    );
    assert.equal(role("U0MALLORY"), "outsider: may decide nothing");
  });
});

describe("the local Access issuer", () => {
  test("its tokens pass the production verifier against the keys it serves; the served keys are public only", async () => {
    const key = parseLocalAccessKey(await newLocalAccessKey())!;
    const jwks = publicJwks(key);
    for (const member of ["d", "p", "q", "dp", "dq", "qi"]) assert.ok(!(member in jwks.keys[0]!), `serves ${member}`);
    const origin = await serveJson(jwks);
    const access = { issuer: origin, audience: "signoff-local-access", jwksUrl: `${origin}/certs` };
    const token = await mintAccessToken(key, access, "alice@example.com");
    const verified = await verifyAccess(access, new Headers({ [ACCESS_HEADER]: token }));
    assert.deepEqual(verified, { ok: true, email: "alice@example.com" });
    // The cookie Access also sets carries the same token.
    const viaCookie = await verifyAccess(access, new Headers({ cookie: `CF_Authorization=${token}` }));
    assert.deepEqual(viaCookie, { ok: true, email: "alice@example.com" });
  });

  test("a token of another key, for another audience or expired is refused", async () => {
    const key = parseLocalAccessKey(await newLocalAccessKey())!;
    const other = parseLocalAccessKey(await newLocalAccessKey())!;
    const origin = await serveJson(publicJwks(key));
    const access = { issuer: origin, audience: "signoff-local-access", jwksUrl: `${origin}/certs` };
    const headers = (token: string) => new Headers({ [ACCESS_HEADER]: token });
    // Same kid as the served key, signed by another: what someone without LOCAL_ACCESS_KEY could make.
    const forged = await mintAccessToken({ ...other, kid: key.kid }, access, "alice@example.com");
    assert.deepEqual(await verifyAccess(access, headers(forged)), { ok: false, reason: "invalid" });
    const elsewhere = await mintAccessToken(key, { ...access, audience: "another-application" }, "alice@example.com");
    assert.deepEqual(await verifyAccess(access, headers(elsewhere)), { ok: false, reason: "invalid" });
    const old = await mintAccessToken(key, access, "alice@example.com", Date.now() - 3_600_000);
    assert.deepEqual(await verifyAccess(access, headers(old)), { ok: false, reason: "expired" });
  });

  test("who is signed in: the demo person the stand-in's cookie names, else nobody", () => {
    const as = (cookie: string) => signedInEmail(new Headers({ cookie }));
    assert.equal(as(`theme=dark; ${LOCAL_IDENTITY_COOKIE}=U0ALICE`), "alice@example.com");
    assert.equal(as(`${LOCAL_IDENTITY_COOKIE}=U0DAVE`), "dave@example.com");
    assert.equal(as(`${LOCAL_IDENTITY_COOKIE}=`), null, "signed out on the page");
    assert.equal(as(`${LOCAL_IDENTITY_COOKIE}=U0NOBODY`), null, "not a demo person");
    assert.equal(as("CF_Authorization=x"), null);
    assert.equal(
      parseLocalAccessKey('{"kty":"RSA","alg":"RS256","kid":"k","n":"x","e":"AQAB"}'),
      null,
      "no private key",
    );
  });
});
