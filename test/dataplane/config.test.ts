import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../lib/config/index.ts";
import { isUnavailable } from "../../lib/db/db.ts";
import { wsProxySettings } from "../../lib/db/neon.ts";
import { connectionString, poolOptions, sessionSetup, tlsOptions } from "../../lib/db/pg.ts";

const db = (env: Record<string, string>) => loadConfig({ NODE_ENV: "test", ...env }).db;

describe("choosing the database driver", () => {
  it.each([
    [{}, "pglite"],
    [{ DATABASE_URL: "memory://" }, "pglite"],
    [{ DATABASE_URL: "postgres://u:p@db.internal:5432/payments" }, "pg"],
    [{ POSTGRES_HOST: "payment-postgres", POSTGRES_PASSWORD: "s3cr:t" }, "pg"],
    [{ DATABASE_URL: "postgres://u:p@ep-cool-darkness-123456.eu-central-1.aws.neon.tech/neondb" }, "neon"],
    [{ DATABASE_URL: "postgresql://u:p@ep-x-pooler.us-east-2.aws.neon.tech/db?sslmode=require" }, "neon"],
    [{ DATABASE_URL: "postgres://u@ep-x.aws.neon.tech/db", DB_DRIVER: "pg" }, "pg"],
    [{ DATABASE_URL: "postgres://u@127.0.0.1:5432/db", DB_DRIVER: "neon" }, "neon"],
  ])("%j → %s", (env, driver) => {
    expect(db(env).driver).toBe(driver);
  });

  it("builds the URL from the POSTGRES_* variables, escaping the password", () => {
    const config = db({
      POSTGRES_HOST: "payment-postgres",
      POSTGRES_PORT: "6543",
      POSTGRES_PASSWORD: "p@ss/w",
    });
    expect(config.url).toBe("postgres://postgres:p%40ss%2Fw@payment-postgres:6543/payments");
  });

  it("refuses a server driver without a URL, and PGlite in production", () => {
    expect(() => db({ DB_DRIVER: "pg" })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32) })).toThrow(/DATABASE_URL/);
  });

  it("takes a schema only as a plain identifier (it is spliced into search_path)", () => {
    expect(db({ DATABASE_URL: "postgres://u@h/d", DB_SCHEMA: "t_ab12" }).schema).toBe("t_ab12");
    expect(() => db({ DATABASE_URL: "postgres://u@h/d", DB_SCHEMA: "x;DROP" })).toThrow(/DB_SCHEMA/);
    expect(sessionSetup(db({ DATABASE_URL: "postgres://u@h/d", DB_SCHEMA: "t_ab12" }))).toContain(
      "SET search_path TO t_ab12",
    );
  });
});

describe("connection settings", () => {
  it("sets the server-side timeouts with SET, never as start-up parameters a pooler would refuse", () => {
    const config = db({
      DATABASE_URL: "postgres://u@pooler.internal:6432/d",
      DB_STATEMENT_TIMEOUT_MS: "4000",
    });
    const options = poolOptions(config);
    for (const name of [
      "statement_timeout",
      "idle_in_transaction_session_timeout",
      "lock_timeout",
      "options",
    ]) {
      expect(options).not.toHaveProperty(name);
    }
    expect(options.query_timeout).toBe(5_000);
    expect(sessionSetup(config)).toBe(
      "SET statement_timeout = 4000; SET idle_in_transaction_session_timeout = 8000",
    );
  });
});

describe("TLS to PostgreSQL", () => {
  it("is off for a URL without sslmode and for sslmode=disable", () => {
    expect(db({ DATABASE_URL: "postgres://u@10.0.0.5/d" }).ssl).toBe(false);
    expect(db({ DATABASE_URL: "postgres://u@h/d?sslmode=disable" }).ssl).toBe(false);
  });

  it.each(["require", "verify-full", "prefer"])("sslmode=%s verifies the chain and the host name", (mode) => {
    const ssl = db({ DATABASE_URL: `postgres://u@h/d?sslmode=${mode}` }).ssl;
    expect(ssl).toMatchObject({ verifyChain: true, verifyHost: true });
    expect(tlsOptions(ssl)).toEqual({ rejectUnauthorized: true });
  });

  it("verify-ca skips only the host name; no-verify only encrypts", () => {
    const ca = tlsOptions(db({ DATABASE_URL: "postgres://u@h/d?sslmode=verify-ca" }).ssl);
    expect(ca).toMatchObject({ rejectUnauthorized: true });
    expect(ca && typeof ca.checkServerIdentity).toBe("function");
    expect(tlsOptions(db({ DATABASE_URL: "postgres://u@h/d?sslmode=no-verify" }).ssl)).toEqual({
      rejectUnauthorized: false,
    });
  });

  it("POSTGRES_SSL wins over the URL, and POSTGRES_SSL_CA supplies the CA as PEM", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const on = db({ POSTGRES_HOST: "pg", POSTGRES_SSL: "true", POSTGRES_SSL_CA: pem }).ssl;
    expect(tlsOptions(on)).toEqual({ rejectUnauthorized: true, ca: pem });
    expect(db({ DATABASE_URL: "postgres://u@h/d?sslmode=require", POSTGRES_SSL: "false" }).ssl).toBe(false);
    expect(() => db({ POSTGRES_HOST: "pg", POSTGRES_SSL: "maybe" })).toThrow(/POSTGRES_SSL/);
  });

  it("takes the TLS parameters out of the URL handed to the driver, keeping the others", () => {
    expect(
      connectionString("postgres://u:p@h:5432/d?sslmode=require&sslrootcert=/ca.pem&application_name=x"),
    ).toBe("postgres://u:p@h:5432/d?application_name=x");
    expect(connectionString("postgres://u@h/d?sslmode=verify-full")).toBe("postgres://u@h/d");
    expect(poolOptions(db({ DATABASE_URL: "postgres://u@h/d?sslmode=require" })).ssl).toEqual({
      rejectUnauthorized: true,
    });
  });
});

describe("the Neon driver's WebSocket proxy setting", () => {
  it("returns host:port/path?address=… without a scheme, the scheme deciding ws or wss", () => {
    const local = wsProxySettings("ws://127.0.0.1:8081");
    expect(local.wsProxy("127.0.0.1", 5432)).toBe("127.0.0.1:8081/v2?address=127.0.0.1:5432");
    expect(local.useSecureWebSocket).toBe(false);
    const remote = wsProxySettings("wss://wsproxy.example.com/v1/");
    expect(remote.wsProxy("db.internal", "5432")).toBe("wsproxy.example.com/v1?address=db.internal:5432");
    expect(remote.useSecureWebSocket).toBe(true);
    const bare = wsProxySettings("wsproxy.internal:6543");
    expect(bare.wsProxy("h", 1)).toBe("wsproxy.internal:6543/v2?address=h:1");
    expect(bare.useSecureWebSocket).toBe(true);
  });
});

describe("errors that mean the database is unavailable", () => {
  it.each([
    [{ code: "57P01", message: "terminating connection due to administrator command" }, true],
    [{ code: "08006", message: "connection failure" }, true],
    [new Error("timeout exceeded when trying to connect"), true],
    [new Error("Connection terminated unexpectedly"), true],
    // The Neon driver rejects with the WebSocket's ErrorEvent, which is not an Error.
    [{ type: "error", message: "connect ECONNREFUSED 127.0.0.1:8081" }, true],
    [{ type: "error", message: "Unexpected server response: 503" }, true],
    [{ type: "error", message: "Unexpected server response: 403" }, false],
    [{ code: "23505", message: "duplicate key value violates unique constraint" }, false],
    [new Error("syntax error at or near"), false],
  ])("%j → %s", (error, expected) => {
    expect(isUnavailable(error)).toBe(expected);
  });
});
