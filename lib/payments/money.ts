/** ISO 4217 minor-unit exponents of the currencies we accept. Amounts are always integers in minor units. */
export const CURRENCY_EXPONENTS = {
  RUB: 2,
  USD: 2,
  EUR: 2,
  GBP: 2,
  JPY: 0,
  KZT: 2,
  BYN: 2,
  CNY: 2,
  KWD: 3,
} as const;

export type Currency = keyof typeof CURRENCY_EXPONENTS;
export const CURRENCIES = Object.keys(CURRENCY_EXPONENTS) as Currency[];

export const MAX_AMOUNT = 99_999_999_999;

export function isCurrency(code: string): code is Currency {
  return Object.hasOwn(CURRENCY_EXPONENTS, code);
}

/** Formats minor units as an exact decimal string ("1999" USD → "19.99"), without floating point. */
export function toDecimalString(minor: number, currency: Currency): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError("amount must be a safe integer");
  const exponent = CURRENCY_EXPONENTS[currency];
  const negative = minor < 0;
  const digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  return `${negative ? "-" : ""}${whole}${exponent > 0 ? `.${fraction}` : ""}`;
}

/** Parses an exact decimal string ("19.99") into minor units; rejects more fraction digits than the currency has. */
export function fromDecimalString(value: string, currency: Currency): number {
  const exponent = CURRENCY_EXPONENTS[currency];
  const match = /^(\d+)(?:\.(\d+))?$/.exec(value);
  if (!match) throw new RangeError(`not a decimal amount: ${value}`);
  const fraction = (match[2] ?? "").padEnd(exponent, "0");
  if (fraction.length > exponent)
    throw new RangeError(`${currency} has ${exponent} decimal places: ${value}`);
  const minor = Number(`${match[1]}${fraction}`);
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount out of range: ${value}`);
  return minor;
}

/** Major units for the amount histogram only; never used for arithmetic on money. */
export function toMajorUnits(minor: number, currency: Currency): number {
  return minor / 10 ** CURRENCY_EXPONENTS[currency];
}
