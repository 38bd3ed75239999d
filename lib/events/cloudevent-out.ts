import { CloudEvent, HTTP } from "cloudevents";
import type { OutboxRow } from "./outbox-store.ts";

/** Extensions every outgoing event carries; consumers filter and order by them (contract: API "Events"). */
export interface EventExtensions {
  merchantid: string;
  partitionkey: string;
  traceparent?: string;
}

/** The outbox row as the CloudEvent it announces. */
export function toCloudEvent(row: OutboxRow, overrides: Record<string, string> = {}): CloudEvent<unknown> {
  const extensions: EventExtensions = {
    merchantid: row.merchant_id,
    partitionkey: row.partition_key,
    ...(row.traceparent ? { traceparent: row.traceparent } : {}),
  };
  return new CloudEvent<unknown>({
    id: row.id,
    type: row.type,
    source: row.source,
    subject: row.subject,
    time: new Date(row.created_at).toISOString(),
    datacontenttype: "application/json",
    data: row.data,
    ...extensions,
    ...overrides,
  });
}

/** Binary content mode: attributes in ce-* headers, the data as the JSON body (what a Knative broker expects). */
export function toBinaryRequest(event: CloudEvent<unknown>): {
  headers: Record<string, string>;
  body: string;
} {
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (typeof value === "string") headers[name] = value;
    else if (Array.isArray(value)) headers[name] = value.join(", ");
  }
  return { headers, body: typeof message.body === "string" ? message.body : JSON.stringify(message.body) };
}
