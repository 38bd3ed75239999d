import type { DbConfig } from "../config/index.ts";
import type { Db } from "./db.ts";

export type { Db, Queryable } from "./db.ts";

/** Opens the configured backend. Drivers load lazily so a function only pays for the one it uses. */
export async function openDb(config: DbConfig): Promise<Db> {
  switch (config.driver) {
    case "pglite": {
      const { openPglite } = await import("./pglite.ts");
      return openPglite(config.dataDir);
    }
    case "pg": {
      const { openPg } = await import("./pg.ts");
      return openPg(config);
    }
    case "neon": {
      const { openNeon } = await import("./neon.ts");
      return openNeon(config);
    }
  }
}
