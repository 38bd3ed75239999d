import { ConfigError, loadConfig } from "../config/index.ts";
import { type FunctionsOf, startServer } from "./server.ts";

/**
 * A process's whole life: the configuration from the environment, then the server. A bad configuration stops here,
 * readably, with EX_CONFIG.
 */
export async function serve(functionsOf: FunctionsOf): Promise<void> {
  try {
    await startServer(loadConfig(), functionsOf);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}
