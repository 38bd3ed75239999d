import { ERROR_STATUS, type ErrorCode } from "../../../lib/http/errors.ts";

/** The shape every answer of the harness and of the HTTP clients here has. */
export interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: answers are arbitrary JSON
  body: any;
}

/** One documented outcome of a request: a 2xx, or an error code of the contract's closed list. */
export type Expected = number | ErrorCode;

/**
 * Why an answer is not one of the documented outcomes, or undefined when it is. An error must be problem+json with
 * a code of the closed list at that code's status (provider_unavailable: 502 or 503), echo the request id, and carry
 * Retry-After where the contract promises it (429, and every 503: database down, circuit open, busy provider, a
 * notification to deliver again).
 */
export function undocumented(answer: Answer, expected: readonly Expected[]): string | undefined {
  const { status, body, headers } = answer;
  const describe = () => `${status} ${typeof body === "string" ? body.slice(0, 200) : JSON.stringify(body)}`;
  if (status < 400) {
    return expected.includes(status) ? undefined : `unexpected success ${describe()}`;
  }
  const code = body?.code as ErrorCode | undefined;
  if (!code || !(code in ERROR_STATUS)) return `error outside the closed list: ${describe()}`;
  if (!expected.includes(code)) return `undocumented for this request: ${describe()}`;
  const statusOk =
    code === "provider_unavailable" ? status === 502 || status === 503 : status === ERROR_STATUS[code];
  if (!statusOk) return `${code} with status ${status}`;
  if (!headers.get("content-type")?.includes("application/problem+json"))
    return `not problem+json: ${describe()}`;
  if (body.request_id !== headers.get("x-request-id")) return `request_id not echoed: ${describe()}`;
  if ((status === 429 || status === 503) && !(Number(headers.get("retry-after")) > 0)) {
    return `${status} without Retry-After: ${describe()}`;
  }
  return undefined;
}

/** Every answer that is not documented, with the request it answered; for one expect(...).toEqual([]). */
export function undocumentedAnswers(
  answers: readonly { request: string; answer: Answer; expected: readonly Expected[] }[],
): string[] {
  return answers.flatMap(({ request, answer, expected }) => {
    const why = undocumented(answer, expected);
    return why ? [`${request}: ${why}`] : [];
  });
}

/** Counts answers by "status code" (or status alone for successes), for readable assertions and reports. */
export function tally(answers: readonly Answer[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const key = a.status < 400 ? String(a.status) : `${a.status} ${a.body?.code ?? "?"}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
