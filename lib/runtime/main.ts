import { ConfigError, loadConfig } from "../config/index.ts";
import { startServer } from "./server.ts";

/** Process entry: FUNCTION_TARGET picks the function (default all); a bad configuration stops here, readably. */
try {
  await startServer(loadConfig());
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}
