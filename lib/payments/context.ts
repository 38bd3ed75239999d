import type { Cache } from "../cache/cache.ts";
import type { Config } from "../config/index.ts";
import type { Db } from "../db/db.ts";
import type { OutboxDispatcher } from "../events/dispatcher.ts";
import type { PaymentProvider, ProviderName } from "../providers/provider.ts";
import type { Logger } from "../telemetry/logger.ts";

export interface Providers {
  get(name: ProviderName): PaymentProvider | undefined;
  /** The provider a new payment of this currency goes to when the client names none. */
  forCurrency(currency: string): ProviderName;
  readonly names: readonly ProviderName[];
}

/** Everything a verb may use, built once at start-up; tests build their own. */
export interface ServiceContext {
  config: Config;
  db: Db;
  cache: Cache;
  providers: Providers;
  log: Logger;
  clock: () => Date;
  /** Wakes the outbox dispatcher after a commit that wrote events. */
  onEventsWritten: () => void;
  /** Sends the outbox to K_SINK; absent without a sink (events then stay in the outbox, see GET /internal/outbox). */
  outbox?: OutboxDispatcher;
}

/** Who is asking, for one request. */
export interface Actor {
  merchantId: string;
  requestId: string;
  traceparent?: string;
  /** "merchant" for API calls; "provider" for webhooks; "system" for reconciliation. */
  type: "merchant" | "provider" | "system";
  /** Who, for the audit trail, when not the merchant: the provider's name, or the job that acted. */
  id?: string;
  /** The function that served the request, for the CloudEvent source. */
  source: string;
  /** The request's Idempotency-Key, if any: its record learns what the request changed, in the same statement. */
  idempotencyKey?: string;
  /**
   * With a key, the status the route answers a success with. A change whose object is the answer stores it in the
   * key's record in its own statement and then sets `answerStored`: the request needs no further write, and a crash
   * after the commit leaves the answer stored rather than a key to recover.
   */
  successStatus?: number;
  answerStored?: boolean;
}

export type VerbContext = ServiceContext & { actor: Actor };
