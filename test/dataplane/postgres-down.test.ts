import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../../lib/db/db.ts";
import { openPg } from "../../lib/db/pg.ts";
import {
  type BackendDb,
  hostPort,
  openBackendDb,
  postgresSkipReason,
  serverBackends,
  TEST_DATABASE_URL,
} from "../support/backends.ts";
import { type DataplaneService, eventually, startService } from "./support/service.ts";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.ts";

const skip = await postgresSkipReason();
if (skip) process.stderr.write(`test/dataplane/postgres-down: ${skip}\n`);

// Short on purpose, so the bounds below stay small; production defaults are 3 s and 5 s.
const CONNECT_TIMEOUT_MS = 1_000;
const STATEMENT_TIMEOUT_MS = 2_000;
// Not a speed target: the bound that proves no request waits on a dead database past its timeouts.
const NO_HANG_BOUND_MS = CONNECT_TIMEOUT_MS + STATEMENT_TIMEOUT_MS + 2_000;

describe.skipIf(skip).each(serverBackends())("PostgreSQL failures through the %s driver", (driver) => {
  let proxy: TcpProxy;
  let db: BackendDb;
  let direct: Db;
  let t: DataplaneService;

  beforeAll(async () => {
    // The service reaches PostgreSQL only through a proxy the test can cut; the machine's server stays up.
    proxy = await startTcpProxy(hostPort(TEST_DATABASE_URL));
    db = await openBackendDb(driver, {
      url: proxy.via(TEST_DATABASE_URL),
      env: {
        DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      },
    });
    direct = openPg({ ...db.config, driver: "pg", url: TEST_DATABASE_URL });
    t = await startService({ db });
  });
  afterAll(async () => {
    await direct?.close();
    await t?.close();
    await proxy?.close();
  });

  const countOrders = async () =>
    (await direct.query<{ n: number }>("SELECT count(*)::int AS n FROM orders")).rows[0]?.n ?? -1;
  const createOrder = (amount: number, idempotencyKey?: string) =>
    t.call("POST", "/v1/orders", { body: { amount, currency: "USD" }, idempotencyKey });
  const recovered = () => eventually(async () => (await createOrder(1)).status === 201);

  it("answers 503 with Retry-After at once when the server is gone, writes nothing, and recovers", async () => {
    const order = await createOrder(100);
    expect(order.status).toBe(201);
    const before = await countOrders();

    await proxy.cut();
    const started = Date.now();
    const failed = await createOrder(200, "down-1");
    const read = await t.call("GET", `/v1/orders/${order.body.id}`);
    expect(Date.now() - started).toBeLessThan(NO_HANG_BOUND_MS);
    for (const res of [failed, read]) {
      expect(res.status).toBe(503);
      expect(res.body.code).toBe("service_unavailable");
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    const ready = await t.call("GET", "/ready");
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toBe("down");
    expect((await t.call("GET", "/health")).status).toBe(200);
    expect(await countOrders()).toBe(before);

    await proxy.restore();
    expect(await recovered()).toBe(true);
    expect((await t.call("GET", "/ready")).status).toBe(200);
    // The request that failed with 503 stored no answer under its key: its retry runs and succeeds.
    const retried = await createOrder(200, "down-1");
    expect(retried.status).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
  });

  it("answers 503 after the connect timeout when the server accepts connections but never answers", async () => {
    proxy.blackhole();
    const started = Date.now();
    const res = await createOrder(300);
    expect(Date.now() - started).toBeLessThan(NO_HANG_BOUND_MS);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("service_unavailable");
    expect((await t.call("GET", "/ready")).status).toBe(503);
    await proxy.restore();
    expect(await recovered()).toBe(true);
  });

  it("rolls back a request whose connection is killed mid-transaction: 503, nothing half-written, retry works", async () => {
    const amount = 4_321;
    const key = `killed-${driver}`;
    const rowsFor = async () =>
      (
        await direct.query<{ orders: number; audit: number; events: number }>(
          `SELECT (SELECT count(*) FROM orders WHERE amount = $1)::int AS orders,
                  (SELECT count(*) FROM audit_log WHERE amount = $1)::int AS audit,
                  (SELECT count(*) FROM outbox WHERE (data->>'amount')::bigint = $1)::int AS events`,
          [amount],
        )
      ).rows[0];

    // Holding the outbox lock stops the request's transaction after its order insert, at its outbox insert.
    const { request } = await direct.transaction(async (tx) => {
      await tx.query("LOCK TABLE outbox IN EXCLUSIVE MODE");
      const request = createOrder(amount, key);
      let pid: number | undefined;
      const blocked = await eventually(async () => {
        const { rows } = await tx.query<{ pid: number }>(
          "SELECT pid FROM pg_locks WHERE relation = 'outbox'::regclass AND NOT granted",
        );
        pid = rows[0]?.pid;
        return pid !== undefined;
      }, 10_000);
      expect(blocked).toBe(true);
      await tx.query("SELECT pg_terminate_backend($1)", [pid]);
      return { request }; // wrapped: the lock is released (COMMIT) before the answer is awaited
    });
    const res = await request;
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("service_unavailable");
    expect(await rowsFor()).toEqual({ orders: 0, audit: 0, events: 0 });

    const retried = await createOrder(amount, key);
    expect(retried.status).toBe(201);
    expect(await rowsFor()).toEqual({ orders: 1, audit: 1, events: 1 });
  });
});
