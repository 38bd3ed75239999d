/**
 * An answer that is already JSON text (a status-cache hit): sent as it is, where an object would be parsed from the
 * cache only to be serialized again for the response.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** The response body of a handler's result: JSON text as it is, anything else serialized. */
export function jsonBody(result: unknown): string {
  return result instanceof JsonText ? result.text : JSON.stringify(result);
}
