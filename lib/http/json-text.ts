/**
 * An answer that is already JSON text (a status-cache hit): sent as it is, where an object would be parsed from the
 * cache only to be serialized again for the response. `T` names the object the text holds, for readers of the type.
 */
export class JsonText<T = unknown> {
  declare readonly holds?: T; // names the type only; never set
  constructor(readonly text: string) {}
}

/** The response body of a handler's result: JSON text as it is, anything else serialized. */
export function jsonBody(result: unknown): string {
  return result instanceof JsonText ? result.text : JSON.stringify(result);
}
