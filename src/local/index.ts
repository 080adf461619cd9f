// Local mode's Worker entry (wrangler.toml [env.local], SPEC 9): the production app from src/app.ts, unchanged,
// plus the Slack stand-in at `/` and `/__local/*`. The production entry src/index.ts never imports this folder,
// so none of it can be in a production deploy (scripts/test/production-bundle.node-test.ts checks the bundle).
import { buildApp } from "../app.ts";
import { isLoopbackHost } from "../lib/hosts.ts";
import { type LocalEnv, standinRoutes } from "./routes.ts";

export { ProposalObject } from "../proposal/object.ts";
export { LocalSlack } from "./store.ts";

const app = buildApp();
const standin = standinRoutes(app);

function isStandinPath(pathname: string): boolean {
  return pathname === "/" || pathname.startsWith("/__local/");
}

export default {
  fetch(request, env, ctx) {
    const url = new URL(request.url);
    // Belt and braces should [env.local] ever be deployed: the stand-in (which lets anyone click as anyone)
    // answers only on a loopback address and with LOCAL_MODE set; everything else is the production app.
    if (isStandinPath(url.pathname) && env.LOCAL_MODE === "1" && isLoopbackHost(url.hostname)) {
      return standin.fetch(request, env, ctx);
    }
    return app.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<LocalEnv>;
