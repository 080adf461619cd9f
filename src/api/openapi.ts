// GET /openapi.json: the OpenAPI 3.1 description, generated from the same zod schemas the routes validate with.
import { z } from "zod";
import pkg from "../../package.json";
import { CheckpointSchema } from "../audit/checkpoint.ts";
import {
  ActionsResponse,
  AlertmanagerPayload,
  AlertmanagerResponse,
  AuditCheckpointParams,
  AuditPage,
  AuditQueryParams,
  CreatedProposalResponse,
  CreateProposalBody,
  ErrorResponse,
  Health,
  MetricsParams,
  ProposalResponse,
  PublicKeys,
  ResultBody,
  StatsQueryParams,
  StatsResponse,
} from "./schemas.ts";

const schema = (s: z.ZodType, io: "input" | "output" = "output") => z.toJSONSchema(s, { io, unrepresentable: "any" });

const json = (s: z.ZodType, description: string, io: "input" | "output" = "output") => ({
  description,
  content: { "application/json": { schema: schema(s, io) } },
});

const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [String(status), { $ref: "#/components/responses/Error" }]));

const html = (description: string) => ({ description, content: { "text/html": { schema: { type: "string" } } } });

const linkParam = {
  name: "token",
  in: "path",
  required: true,
  schema: { type: "string", pattern: "^v1\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$" },
};

const idParam = { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^prp_[0-9a-f]{64}$" } };

function queryParameters(s: z.ZodObject) {
  const json = schema(s, "input") as { properties?: Record<string, unknown> };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: "query",
    required: false,
    schema: property,
  }));
}

let cached: unknown;

export function openApiDocument(): unknown {
  cached ??= {
    openapi: "3.1.0",
    info: {
      title: "signoff",
      version: pkg.version,
      description:
        "A ChatOps approval gate: proposals wait for a verified human in Slack before a runner executes them.",
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
          parameters: [
            { name: "Idempotency-Key", in: "header", required: false, schema: { type: "string", maxLength: 255 } },
          ],
          requestBody: {
            required: true,
            content: { "application/json": { schema: schema(CreateProposalBody, "input") } },
          },
          responses: {
            "201": json(
              CreatedProposalResponse,
              "Created (a verification prompt with links: with its recipient's links; never an approval's)",
            ),
            "200": json(
              CreatedProposalResponse,
              "The same Idempotency-Key and body again: the first proposal (and a prompt's same links)",
            ),
            ...errors(400, 401, 403, 409, 413, 415, 422, 503),
          },
        },
      },
      "/v1/proposals/{id}": {
        get: {
          summary: "Read a proposal; ?wait=N long-polls up to N seconds for a status change",
          parameters: [
            idParam,
            { name: "wait", in: "query", required: false, schema: { type: "integer", minimum: 0, maximum: 60 } },
          ],
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
      "/v1/actions": {
        get: {
          summary: "What the calling key may propose: each action's params schema, TTLs and decision rule",
          description:
            "Scope proposals:write or proposals:read; the actions the key's action patterns allow, sorted by " +
            "type. The rule says how many approve and how many users, groups and link recipients may, never who.",
          responses: { "200": json(ActionsResponse, "The actions"), ...errors(401, 403, 503) },
        },
      },
      "/v1/adapters/alertmanager": {
        post: {
          summary: "Alertmanager's webhook (payload version 4): firing alerts become proposals, resolved ones cancel",
          description:
            "Scope proposals:write. Each firing alert the policy's adapters.alertmanager.routes match is proposed as " +
            "POST /v1/proposals would (the key's action patterns apply) under an Idempotency-Key from its fingerprint " +
            "and startsAt; a resolved alert cancels its pending proposal. 200 lists what happened to each alert; " +
            "503 retry_later (Retry-After) when one met a passing fault, so Alertmanager sends the group again.",
          requestBody: {
            required: true,
            content: { "application/json": { schema: schema(AlertmanagerPayload, "input") } },
          },
          responses: {
            "200": json(AlertmanagerResponse, "What happened to each alert"),
            ...errors(400, 401, 403, 413, 415, 503),
          },
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
      "/v1/stats": {
        get: {
          summary: "Time to decision per action, from the audit log: statuses, p50/p90/max, late decisions, approvers",
          parameters: queryParameters(StatsQueryParams),
          responses: {
            "200": json(StatsResponse, "Statistics of the proposals created in [since, until)"),
            ...errors(400, 401, 403, 503),
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus text format: counters by action and status, and a decision-time histogram",
          parameters: queryParameters(MetricsParams),
          responses: {
            "200": {
              description: "The metrics (text exposition format 0.0.4)",
              content: { "text/plain": { schema: { type: "string" } } },
            },
            ...errors(400, 401, 403, 503),
          },
        },
      },
      "/v1/audit/checkpoint": {
        get: {
          summary:
            "Every chain's last seq, hash and count and the log's max seq, signed with AUDIT_SIGNING_KEY (Ed25519) " +
            "once each chain's head in D1 matched its proposal's own record; keep it outside D1 for npm run audit:verify",
          parameters: queryParameters(AuditCheckpointParams),
          responses: {
            "200": json(CheckpointSchema, "The signed checkpoint"),
            "409": {
              description: "audit_mismatch: D1 disagrees with the proposals' own records; details name each chain",
              $ref: "#/components/responses/Error",
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
      "/slack/events": {
        post: {
          summary:
            "Slack's Events API request URL (Slack-signed JSON): url_verification answered with its challenge, " +
            "app_home_opened draws the Home tab, other events ignored; a retried delivery is taken once per event_id",
          security: [],
          responses: {
            "200": { description: "Acknowledged (url_verification: {challenge})" },
            ...errors(400, 401, 413, 503),
          },
        },
      },
      "/l/{token}": {
        get: {
          summary: "A signed link's confirmation page (HTML). Decides nothing: mail scanners and unfurlers fetch links",
          security: [],
          parameters: [linkParam],
          responses: {
            "200": html("The confirmation page, with a one-button form; sets the signoff_csrf cookie"),
            "400": html("Not a valid link"),
            "403": html(
              "Links are not enabled for the action, the recipient may not decide, or (approval links) the request " +
                "carries no Cloudflare Access sign-in of the recipient",
            ),
            "503": html("The identity provider's keys could not be fetched; nothing was decided"),
            "409": html("Already used, or the proposal was already decided"),
            "410": html("Expired"),
          },
        },
        post: {
          summary: "The confirmation page's button: decides, once (form field csrf must equal the signoff_csrf cookie)",
          description:
            "Approval links (approve, deny) decide only for the person Cloudflare Access vouches for on this very " +
            "request (Cf-Access-Jwt-Assertion, or the CF_Authorization cookie): the link's recipient, or on the " +
            "Teams card's links one of the policy's recipients, each person once. A verification prompt's links " +
            "(yes, no, unsure) answer by possession; they never dispatch.",
          security: [],
          parameters: [linkParam],
          requestBody: {
            required: true,
            content: {
              "application/x-www-form-urlencoded": {
                schema: {
                  type: "object",
                  required: ["csrf"],
                  properties: {
                    csrf: { type: "string" },
                    reason: { type: "string", maxLength: 500, description: "deny links only" },
                  },
                },
              },
            },
          },
          responses: {
            "200": html("Decided: what was recorded"),
            "400": html("Not a valid link (a forgery naming a real proposal is audited)"),
            "403": html(
              "CSRF check failed, links not enabled, the recipient may not decide, or (approval links) no Cloudflare " +
                "Access sign-in of the recipient (identity_required, wrong_identity); nothing changed",
            ),
            "409": html("Already used, or already decided"),
            "410": html("Expired"),
            "415": html("Not a form post"),
            "503": html("The identity provider's keys could not be fetched; nothing was decided"),
          },
        },
      },
      "/v1/keys": {
        get: {
          summary: "Public keys that sign outcome events and dispatches (Standard Webhooks v1a, Ed25519)",
          description:
            "No API key needed. Every listed key of a use signs every delivery of that use, so keys rotate " +
            "with overlap: add the new key, let listeners refetch, then remove the old one.",
          security: [],
          responses: {
            "200": json(PublicKeys, "The keys; empty when only HMAC (v1) secrets are configured"),
            ...errors(503),
          },
        },
      },
      "/healthz": {
        get: {
          summary: "Liveness and configuration check",
          security: [],
          responses: { "200": json(Health, "OK"), ...errors(503) },
        },
      },
      "/openapi.json": {
        get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } },
      },
    },
  };
  return cached;
}
