import { afterEach, describe, expect, it } from "vitest";
import { isUnavailable } from "../../lib/db/db.ts";
import {
  postSandboxWebhook,
  processingPayment,
  sandboxNotificationBody,
  TEST_ENV,
} from "../events/support.ts";
import { type BackendDb, openBackendDb, postgresSkipReason, serverBackends } from "../support/backends.ts";
import { orderWithPayment, startTestService } from "../support/harness.ts";

const skip = await postgresSkipReason();
if (skip) process.stderr.write(`test/dataplane/prepared-statements: ${skip}\n`);

const ADD_ONE = "SELECT $1::int + 1 AS n";
const preparedTexts = (db: BackendDb) =>
  db
    .query<{ statement: string }>("SELECT statement FROM pg_prepared_statements")
    .then(({ rows }) => rows.map((row) => row.statement));

describe.skipIf(skip).each(serverBackends())("named statements through the %s driver", (driver) => {
  let db: BackendDb | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });
  // One connection, so that what one statement prepares the next one sees.
  const open = (env: Record<string, string> = {}) =>
    openBackendDb(driver, { env: { DB_POOL_MAX: "1", ...env } }).then((opened) => {
      db = opened;
      return opened;
    });

  it("prepares a parameterized statement once on its connection and reuses it", async () => {
    const db = await open();
    await db.query("SELECT 1 AS one");
    expect((await db.query<{ n: number }>(ADD_ONE, [1])).rows).toEqual([{ n: 2 }]);
    expect((await db.query<{ n: number }>(ADD_ONE, [41])).rows).toEqual([{ n: 42 }]);
    const texts = await preparedTexts(db);
    expect(texts.filter((text) => text === ADD_ONE)).toHaveLength(1);
    // Statements without parameters (BEGIN, migrations' scripts) stay unnamed.
    expect(texts).not.toContain("SELECT 1 AS one");
  });

  it("prepares nothing with DB_PREPARED_STATEMENTS=false", async () => {
    const db = await open({ DB_PREPARED_STATEMENTS: "false" });
    await db.query(ADD_ONE, [1]);
    await db.transaction((tx) => tx.query(ADD_ONE, [2]));
    expect(await preparedTexts(db)).toEqual([]);
  });

  it("runs a statement again when a migration changed the columns it returns", async () => {
    const db = await open();
    await db.exec("CREATE TABLE widened (id int PRIMARY KEY); INSERT INTO widened VALUES (1)");
    const read = "SELECT * FROM widened WHERE id = $1";
    expect((await db.query(read, [1])).rows).toEqual([{ id: 1 }]);
    await db.exec("ALTER TABLE widened ADD COLUMN note text DEFAULT 'added'");

    // Outside a transaction: run again unnamed on a fresh connection, the caller never sees it.
    expect((await db.query(read, [1])).rows).toEqual([{ id: 1, note: "added" }]);

    // Inside one: the transaction fails as unavailable (503, retry) and its connection is dropped.
    await db.query(read, [1]); // prepared again on the new connection
    await db.exec("ALTER TABLE widened ADD COLUMN later int DEFAULT 7");
    const failed = await db.transaction((tx) => tx.query(read, [1])).catch((error: unknown) => error);
    expect(failed).toMatchObject({ code: "0A000" });
    expect(isUnavailable(failed)).toBe(true);
    const again = await db.transaction((tx) => tx.query(read, [1]));
    expect(again.rows).toEqual([{ id: 1, note: "added", later: 7 }]);
  });

  it("serves every operation on the statements it prepared before a migration added columns to its tables", async () => {
    const db = await open();
    const t = await startTestService({ db, cache: undefined, env: TEST_ENV });
    try {
      // Each write in a transaction of its own (confirm, settle, refund, cancels) and the reads, with an
      // Idempotency-Key where the API takes one: the statements the service prepares.
      const key = () => crypto.randomUUID();
      const operations = async (
        payment: { id: string; order_id: string },
        other: { id: string; order_id: string },
        challenged: { id: string },
        charged: { id: string },
      ) => {
        // A provider's notification settling a payment it charged: the notification's locked read and settle.
        const notified = await postSandboxWebhook(
          t,
          sandboxNotificationBody({ paymentId: charged.id, type: "payment.succeeded" }),
        );
        // The sandbox's 3-D Secure page answered: its own locked read and settle, in one transaction.
        const confirmed = await t.call("POST", `/v1/payments/${challenged.id}/confirm`, {
          body: {},
          idempotencyKey: key(),
        });
        const page = await t.app.request(`/sandbox/3ds/${challenged.id}`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: "action=complete",
        });
        const authenticated = await t.call("GET", `/v1/payments/${challenged.id}`);
        const challenge = [
          `${confirmed.status} ${confirmed.body?.status}`,
          `page ${page.status}`,
          `${authenticated.status} ${authenticated.body?.status}`,
        ];
        const answers = [
          await t.call("POST", `/v1/payments/${payment.id}/confirm`, { body: {}, idempotencyKey: key() }),
          await t.call("GET", `/v1/payments/${payment.id}`),
          await t.call("GET", `/v1/orders/${payment.order_id}`),
          await t.call("GET", "/v1/payments?limit=2"),
          await t.call("POST", "/v1/refunds", {
            body: { payment_id: payment.id, amount: 100 },
            idempotencyKey: key(),
          }),
          await t.call("POST", `/v1/payments/${other.id}/cancel`, { body: {}, idempotencyKey: key() }),
          await t.call("POST", `/v1/orders/${other.order_id}/cancel`, { body: {}, idempotencyKey: key() }),
        ];
        // And the creates (an order, its payment) once more.
        const created = await orderWithPayment(t);
        return [
          `${notified.status} ${notified.body?.result}`,
          ...challenge,
          ...answers.map((answer) => `${answer.status} ${answer.body?.status}`),
          created.payment.status,
        ];
      };
      const payments = [];
      for (let i = 0; i < 4; i++) payments.push((await orderWithPayment(t)).payment);
      const challenges = [];
      for (let i = 0; i < 2; i++) {
        challenges.push(
          (await orderWithPayment(t, { payment_method: "pm_card_threeDSecureRequired" })).payment,
        );
      }
      const charged = [(await processingPayment(t)).payment, (await processingPayment(t)).payment];
      const [first, firstOther, second, secondOther] = payments;
      const before = await operations(first, firstOther, challenges[0], charged[0]);
      expect(before).toEqual([
        "200 applied",
        "200 requires_action",
        "page 200",
        "200 succeeded",
        "200 succeeded",
        "200 succeeded",
        "200 paid",
        "200 undefined",
        "201 succeeded",
        "200 canceled",
        "200 canceled",
        "requires_confirmation",
      ]);
      // Its one connection, on which every statement above was prepared: a statement refused after the migration
      // would be run again on a new connection (outside a transaction) and hide the ones after it.
      const backend = async () =>
        (await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid;
      const connection = await backend();
      await db.exec(
        `ALTER TABLE payments ADD COLUMN added_later text;
         ALTER TABLE orders ADD COLUMN added_later text;
         ALTER TABLE refunds ADD COLUMN added_later text`,
      );
      // A confirm first: inside a transaction, a statement whose result changed would answer 503. Every statement
      // names its columns, so none changed.
      expect(await operations(second, secondOther, challenges[1], charged[1])).toEqual(before);
      expect(await backend()).toBe(connection);
    } finally {
      await t.service.cache.close();
    }
  });
});
