// signoff's Worker entry point: the HTTP app and the per-proposal Durable Object.
import { buildApp } from "./app.ts";

export { ProposalObject } from "./proposal/object.ts";

export default buildApp() satisfies ExportedHandler<Env>;
