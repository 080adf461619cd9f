// The tests' environment: wrangler.toml's bindings (worker-configuration.d.ts, generated) plus what
// vitest.config.ts adds in `miniflare.bindings`. Declared here once, so that tests read `env.TEST_PEER`
// instead of casting `env` in every file (the pattern of workers-sdk's vitest examples).
//
// One tsconfig covers src and test, so src sees these names too; none of them exist in production:
// src reads secrets and vars only through loadConfig (src/config), never straight from `env`.
declare namespace Cloudflare {
  interface Env {
    /** Base URL of the loopback peer (test/peer/server.ts) standing in for Slack, the runner, Teams and callbacks. */
    TEST_PEER: string;
    /** migrations/*.sql as readD1Migrations read them; test/setup.ts applies them to AUDIT_DB. */
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    // Secrets (test/fixtures.ts SECRETS, LINK_BINDINGS, and API_KEYS built from KEY_ENTRIES).
    SLACK_SIGNING_SECRET: string;
    SLACK_BOT_TOKEN: string;
    RUNNER_SECRET: string;
    EVENTS_SECRET: string;
    API_KEYS: string;
    LINK_SECRET: string;
    PUBLIC_URL: string;
    /** signoff's own workspace (test/fixtures.ts SLACK_TEAM_ID). */
    SLACK_TEAM_ID: string;
    // Cloudflare Access (the loopback peer as team domain) and the mail API on the peer, for approval links.
    ACCESS_TEAM_DOMAIN: string;
    ACCESS_AUD: string;
    MAIL_API_URL: string;
    MAIL_FROM: string;
    MAIL_API_TOKEN: string;
    /** Shortened so that the "runner hangs" tests do not wait the default 10 s. */
    DISPATCH_TIMEOUT_MS: string;
  }
}
