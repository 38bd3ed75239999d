import type { Queryable } from "../db/db.ts";
import { columnsOf } from "./columns.ts";

export interface ListParams {
  limit: number;
  starting_after?: string;
  ending_before?: string;
}

export interface ListPage<T> {
  object: "list";
  data: T[];
  has_more: boolean;
}

/**
 * Keyset pagination, newest first. Ids are time-ordered, so `id < cursor` walks older rows and `id > cursor`
 * newer ones; each page is one index range scan whatever its depth. One extra row tells whether more exist.
 */
export async function listPage<Row, T>(
  db: Queryable,
  table: "orders" | "payments",
  filters: Record<string, string | undefined>,
  params: ListParams,
  toObject: (row: Row) => T,
): Promise<ListPage<T>> {
  const where: string[] = [];
  const values: unknown[] = [];
  for (const [column, value] of Object.entries(filters)) {
    if (value === undefined) continue;
    values.push(value);
    where.push(`${column} = $${values.length}`);
  }
  const backwards = params.ending_before !== undefined;
  const cursor = params.starting_after ?? params.ending_before;
  if (cursor !== undefined) {
    values.push(cursor);
    where.push(`id ${backwards ? ">" : "<"} $${values.length}`);
  }
  values.push(params.limit + 1);
  const sql = `SELECT ${columnsOf[table]()} FROM ${table} WHERE ${where.join(" AND ")} ORDER BY id ${backwards ? "ASC" : "DESC"} LIMIT $${values.length}`;
  const { rows } = await db.query<Row>(sql, values);
  const has_more = rows.length > params.limit;
  const page = rows.slice(0, params.limit);
  if (backwards) page.reverse();
  return { object: "list", data: page.map(toObject), has_more };
}
