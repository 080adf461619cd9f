// GET /openapi.json: the OpenAPI 3.1 description, generated from the same zod schemas the routes validate with.
import { z } from "zod";
import pkg from "../../package.json";
import { AuditPage, AuditQueryParams, CreateProposalBody, ErrorResponse, Health, ProposalResponse, ResultBody } from "./schemas.ts";

const schema = (s: z.ZodType, io: "input" | "output" = "output") => z.toJSONSchema(s, { io, unrepresentable: "any" });

const json = (s: z.ZodType, description: string, io: "input" | "output" = "output") => ({
  description,
  content: { "application/json": { schema: schema(s, io) } },
});

const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), { $ref: "#/components/responses/Error" }]));

const idParam = { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^prp_[0-9a-f]{64}$" } };

function queryParameters(s: z.ZodObject) {
  const json = schema(s, "input") as { properties?: Record<string, unknown> };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({ name, in: "query", required: false, schema: property }));
}

let cached: unknown;

export function openApiDocument(): unknown {
  cached ??= {
    openapi: "3.1.0",
    info: {
      title: "signoff",
      version: pkg.version,
      description: "A ChatOps approval gate: proposals wait for a verified human in Slack before a runner executes them.",
    },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
      responses: { Error: json(ErrorResponse, "The error shape every refusal uses") },
    },
    security: [{ bearer: [] }],
    paths: {
      "/v1/proposals": {
        post: {
          summary: "Propose an action",
          parameters: [{ name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", maxLength: 255 } }],
          requestBody: { required: true, content: { "application/json": { schema: schema(CreateProposalBody, "input") } } },
          responses: {
            "201": json(ProposalResponse, "Created"),
            "200": json(ProposalResponse, "The same Idempotency-Key and body again: the first proposal"),
            ...errors(400, 401, 403, 409, 413, 415, 422, 503),
          },
        },
      },
      "/v1/proposals/{id}": {
        get: {
          summary: "Read a proposal; ?wait=N long-polls up to N seconds for a status change",
          parameters: [idParam, { name: "wait", in: "query", required: false, schema: { type: "integer", minimum: 0, maximum: 60 } }],
          responses: { "200": json(ProposalResponse, "The proposal"), ...errors(400, 401, 403, 404, 503) },
        },
      },
      "/v1/proposals/{id}/cancel": {
        post: {
          summary: "Cancel a pending proposal (the creating key only)",
          parameters: [idParam],
          responses: { "200": json(ProposalResponse, "Cancelled"), ...errors(401, 403, 404, 409, 503) },
        },
      },
      "/v1/proposals/{id}/result": {
        post: {
          summary: "The runner reports an asynchronous result (Standard Webhooks signature with RUNNER_SECRET)",
          security: [],
          parameters: [
            idParam,
            { name: "webhook-id", in: "header", required: true, schema: { type: "string" } },
            { name: "webhook-timestamp", in: "header", required: true, schema: { type: "string" } },
            { name: "webhook-signature", in: "header", required: true, schema: { type: "string" } },
          ],
          requestBody: { required: true, content: { "application/json": { schema: schema(ResultBody, "input") } } },
          responses: { "200": { description: "Recorded" }, ...errors(400, 401, 404, 409, 413, 415, 503) },
        },
      },
      "/v1/audit": {
        get: {
          summary: "Read the audit log, oldest first",
          parameters: queryParameters(AuditQueryParams),
          responses: {
            "200": {
              description: "A page of events (format=json), or NDJSON / CSV exports",
              content: {
                "application/json": { schema: schema(AuditPage) },
                "application/x-ndjson": { schema: { type: "string" } },
                "text/csv": { schema: { type: "string" } },
              },
            },
            ...errors(400, 401, 403, 503),
          },
        },
      },
      "/slack/interactions": {
        post: {
          summary: "Slack's interactivity request URL (Slack-signed form body)",
          security: [],
          responses: { "200": { description: "Acknowledged" }, ...errors(400, 401, 413) },
        },
      },
      "/healthz": {
        get: { summary: "Liveness and configuration check", security: [], responses: { "200": json(Health, "OK"), ...errors(503) } },
      },
      "/openapi.json": {
        get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } },
      },
    },
  };
  return cached;
}
