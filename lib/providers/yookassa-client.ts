import { ProviderError, ProviderRequestRejected } from "./provider.ts";

export interface YooKassaClientOptions {
  shopId: string;
  secretKey: string;
  /** Including the version, e.g. https://api.yookassa.ru/v3. */
  apiBase: string;
  timeoutMs: number;
}

export type YooKassaRequest = (
  method: "GET" | "POST",
  path: string,
  options?: { idempotenceKey?: string; body?: unknown },
) => Promise<unknown>;

/**
 * YooKassa's REST API over fetch: HTTP Basic with shopId:secretKey, JSON both ways, Idempotence-Key on every POST
 * (YooKassa keeps keys 24 hours and answers a repeat with the first result; at most 64 characters, which our
 * `<id>:<operation>:<attempt>` keys stay under).
 *
 * Answers, per YooKassa's documentation: 200 the object; 202 still being processed (repeat later with the same
 * key); 400/401/403/404 refused (nothing happened); 429 too many requests (nothing happened, retry); 500 the result
 * is unknown (repeat with the same key).
 */
export function yookassaClient(options: YooKassaClientOptions): YooKassaRequest {
  const base = options.apiBase.replace(/\/$/, "");
  const authorization = `Basic ${Buffer.from(`${options.shopId}:${options.secretKey}`).toString("base64")}`;
  return async (method, path, { idempotenceKey, body } = {}) => {
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${base}${path}`, {
        method,
        headers: {
          Authorization: authorization,
          Accept: "application/json",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...(idempotenceKey ? { "Idempotence-Key": idempotenceKey } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      // Refused before anything was sent: definite. A timeout or a reset after sending: unknown.
      const code = causeCode(error);
      throw new ProviderError(
        "yookassa",
        `yookassa ${method} ${path}: ${describe(error)}`,
        code === "ECONNREFUSED",
      );
    }
    if (response.status === 200) {
      try {
        return JSON.parse(text);
      } catch {
        throw new ProviderError("yookassa", `yookassa ${method} ${path}: unreadable answer`, false);
      }
    }
    const detail = errorDetail(text);
    const message = `yookassa ${method} ${path} answered ${response.status}${detail ? `: ${detail}` : ""}`;
    if (response.status === 429) throw new ProviderError("yookassa", message, true);
    if (response.status === 202 || response.status >= 500)
      throw new ProviderError("yookassa", message, false);
    throw new ProviderRequestRejected("yookassa", message);
  };
}

/** `{type:"error", code, description, parameter}` as a short line; never the request body. */
function errorDetail(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { code?: unknown; description?: unknown; parameter?: unknown };
    return (
      [body.code, body.parameter, body.description].filter((s) => typeof s === "string").join(" ") ||
      undefined
    );
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError") return "timed out";
  return causeCode(error) ?? (error instanceof Error ? error.message : String(error));
}

/** fetch's network error code; a host with several addresses reports an AggregateError of them. */
function causeCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
  return cause?.code ?? cause?.errors?.[0]?.code;
}
