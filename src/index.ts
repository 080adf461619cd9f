// signoff's Worker entry point: the HTTP app, the per-proposal Durable Object and the per-group one (grouped cards).
import { buildApp } from "./app.ts";

export { ProposalGroup } from "./group/object.ts";
export { ProposalObject } from "./proposal/object.ts";

export default buildApp() satisfies ExportedHandler<Env>;
