/**
 * An answer that is already JSON text (a status-cache hit): sent as it is, where an object would be parsed from the
 * cache only to be serialized again for the response. `T` names the object the text holds, for readers of the type.
 */
export class JsonText<T = unknown> {
  constructor(readonly text: string) {}

  /** The object itself, for the rare caller that needs to look inside. */
  value(): T {
    return JSON.parse(this.text) as T;
  }
}

/** The response body of a handler's result: JSON text as it is, anything else serialized. */
export function jsonBody(result: unknown): string {
  return result instanceof JsonText ? result.text : JSON.stringify(result);
}
