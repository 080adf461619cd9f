// Local mode's Worker entry (wrangler.toml [env.local], SPEC 9): the production app from src/app.ts, unchanged,
// plus the Slack stand-in at `/` and `/__local/*`, and in front of /l/* what Cloudflare Access does in production:
// a token for whoever the stand-in page says you are. The production entry src/index.ts never imports this
// folder, so none of it can be in a production deploy (scripts/test/production-bundle.node-test.ts checks the bundle).
import { buildApp } from "../app.ts";
import { loadConfig } from "../config/load.ts";
import { ApiError } from "../errors.ts";
import { ACCESS_HEADER } from "../identity/access.ts";
import { isLoopbackHost } from "../lib/hosts.ts";
import { mintAccessToken, parseLocalAccessKey, signedInEmail } from "./access.ts";
import { type LocalEnv, standinRoutes } from "./routes.ts";

export { ProposalGroup } from "../group/object.ts";
export { ProposalObject } from "../proposal/object.ts";
export { LocalMail } from "./mailbox.ts";
export { LocalSlack } from "./store.ts";

const app = buildApp();
const standin = standinRoutes(app);

function isStandinPath(pathname: string): boolean {
  return pathname === "/" || pathname.startsWith("/__local/");
}

/**
 * The request as Access's edge would pass it on: its own header replaced by a token the local issuer mints for the
 * person chosen on the stand-in page (none when nobody is signed in, so the page refuses, as without Access).
 */
async function throughLocalAccess(request: Request, env: LocalEnv): Promise<Request> {
  const headers = new Headers(request.headers);
  headers.delete(ACCESS_HEADER);
  const email = signedInEmail(request.headers);
  const key = parseLocalAccessKey(env.LOCAL_ACCESS_KEY);
  let access = null;
  try {
    access = loadConfig(env).access;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // A bad configuration: the app answers the request with the page saying so.
  }
  if (email && key && access) headers.set(ACCESS_HEADER, await mintAccessToken(key, access, email));
  else if (email && !key) console.warn("local Access: LOCAL_ACCESS_KEY is not in .dev.vars; start with `npm start`");
  return new Request(request, { headers });
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    // Belt and braces should [env.local] ever be deployed: the stand-in (which lets anyone click as anyone, and
    // sign in as anyone) answers only on a loopback address and with LOCAL_MODE set; everything else is the
    // production app.
    const local = env.LOCAL_MODE === "1" && isLoopbackHost(url.hostname);
    if (local && isStandinPath(url.pathname)) return standin.fetch(request, env, ctx);
    if (local && url.pathname.startsWith("/l/")) return app.fetch(await throughLocalAccess(request, env), env, ctx);
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<LocalEnv>;
