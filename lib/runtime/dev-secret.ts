import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.ts";

/**
 * Development without JWT_SECRET: the secret is made once and kept beside the embedded database, so the server
 * and `npm run token` agree across restarts. Production never gets here (config refuses to start).
 */
export function withDevSecret(config: Config): Config {
  if (!config.auth.generatedSecret) return config;
  const dir = config.db.dataDir ?? ".data";
  const file = join(dir, "dev-jwt-secret");
  let secret: string;
  try {
    secret = readFileSync(file, "utf8").trim();
  } catch {
    secret = randomBytes(32).toString("base64url");
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, secret, { mode: 0o600 });
  }
  return { ...config, auth: { ...config.auth, secret: new TextEncoder().encode(secret) } };
}
