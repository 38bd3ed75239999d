import pg from "pg";

/** A database of its own for one bench run on the machine's PostgreSQL, dropped at the end. */
export interface ScratchDatabase {
  name: string;
  /** What the service is given as DATABASE_URL. */
  url: string;
  /** The schema the service's tables are in: public, or the service's DB_SCHEMA (created here). */
  schema: string;
  /** `url` with that schema as search_path: for the bench's own statements on the service's tables. */
  tablesUrl: string;
  serverVersion: string;
  drop: () => Promise<void>;
}

export async function createScratchDatabase(adminUrl: string, schema = "public"): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
    throw new Error(`DB_SCHEMA ${schema}: not a lower-case identifier`);
  const name = `bench_${new Date().toISOString().replace(/\D/g, "").slice(0, 14)}_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  let serverVersion: string;
  try {
    serverVersion =
      (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ??
      "unknown";
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const tablesUrl = new URL(url);
  tablesUrl.searchParams.set("options", `-c search_path=${schema}`);
  // The service creates no schema of its own (DB_SCHEMA names one that exists, as on a shared database).
  if (schema !== "public") await execSql(url.toString(), `CREATE SCHEMA ${schema}`);
  return {
    name,
    url: url.toString(),
    schema,
    tablesUrl: tablesUrl.toString(),
    serverVersion,
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Runs statements on the scratch database. */
export async function execSql(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Orders with a payment waiting for its confirm, written straight into the service's tables of the scratch
 * database, as pgbench's set-up writes its own: the confirm reference then measures confirms alone on both sides.
 * Spread over the merchants, in random id order.
 */
export async function seedUnconfirmedPayments(
  url: string,
  merchantIds: string[],
  count: number,
): Promise<{ id: string; merchantId: string }[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query(
      `INSERT INTO orders (id, merchant_id, amount, currency, description)
       SELECT 'ord_' || md5('bench-order-' || g), ($1::text[])[1 + g % cardinality($1::text[])], 1000 + g % 5000,
              'USD', 'Load test order (USD)'
       FROM generate_series(1, $2::int) g`,
      [merchantIds, count],
    );
    const { rows } = await client.query<{ id: string; merchant_id: string }>(
      `INSERT INTO payments (id, merchant_id, order_id, amount, currency, provider, payment_method)
       SELECT 'pay_' || md5('bench-payment-' || g), o.merchant_id, o.id, o.amount, o.currency, 'sandbox', 'pm_card_visa'
       FROM generate_series(1, $1::int) g JOIN orders o ON o.id = 'ord_' || md5('bench-order-' || g)
       RETURNING id, merchant_id`,
      [count],
    );
    await client.query("COMMIT");
    await client.query("ANALYZE orders; ANALYZE payments");
    return rows.map((row) => ({ id: row.id, merchantId: row.merchant_id }));
  } finally {
    await client.end();
  }
}

/** Events still in the outbox, not yet sent. */
export async function unsentEvents(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL",
    );
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}
