import { parseArgs } from "node:util";
import { loadConfig } from "../lib/config/index.ts";
import { withDevSecret } from "../lib/runtime/dev-secret.ts";
import { mintToken } from "../lib/runtime/dev-token.ts";

/** npm run token -- --merchant acct_x [--scope payments:read] [--expires 1h] */
const { values } = parseArgs({
  options: {
    merchant: { type: "string", default: "acct_dev" },
    scope: { type: "string", multiple: true },
    expires: { type: "string", default: "24h" },
  },
});
const config = withDevSecret(loadConfig());
if (!config.auth.secret) {
  process.stderr.write(
    "JWT_JWKS_URL is set: tokens come from your identity provider, not from this script.\n",
  );
  process.exit(1);
}
const token = await mintToken(config.auth.secret, values.merchant as string, {
  scopes: values.scope,
  expiresIn: values.expires,
  issuer: config.auth.issuer,
  audience: config.auth.audience,
});
process.stdout.write(`${token}\n`);
