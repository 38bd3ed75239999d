/**
 * Globals that the k6 runtime provides but @types/k6 does not declare (it
 * leaves them to the DOM lib, which does not describe k6 and is not loaded
 * here). Only what the scripts use.
 */
declare global {
  /** k6's console: log/info/debug/warn/error go to the k6 log (stderr). */
  var console: {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    debug(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
  };
}

export {};
