/**
 * Knative's K_CE_OVERRIDES (`{"extensions":{"name":"value"}}`, set by a SinkBinding or by hand): extensions added
 * to every event. They are applied last, as Knative specifies, so an operator's override wins.
 */
export function parseCeOverrides(value: string | undefined): Record<string, string> {
  if (!value) return {};
  const parsed = JSON.parse(value) as { extensions?: Record<string, string> };
  return parsed.extensions ?? {};
}
