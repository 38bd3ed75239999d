import { basename } from "node:path";

/**
 * A scanner for secrets in the text of a repository's files, in the manner of gitleaks: patterns of known credential
 * formats everywhere, and — outside tests, whose fixtures are made up on purpose — passwords in URLs and long
 * high-entropy strings. Used by secrets.test.ts over every file git tracks.
 */
export interface Finding {
  file: string;
  rule: string;
  match: string;
}

const RULES: [string, RegExp][] = [
  ["private key", /-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----/],
  ["AWS access key id", /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/],
  ["AWS secret access key", /aws_secret_access_key\s*[=:]\s*["']?[A-Za-z0-9/+=]{40}/i],
  ["Stripe live key", /\b[rs]k_live_[0-9A-Za-z]{8,}/],
  ["GitHub token", /\bgh[pousr]_[A-Za-z0-9]{36,}\b/],
  ["Slack token", /\bxox[abprs]-[A-Za-z0-9-]{10,}/],
  ["Google API key", /\bAIza[0-9A-Za-z_-]{35}\b/],
  ["JSON Web Token", /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}/],
];

// A password in a URL, unless it is a placeholder (<password>, ${VAR}, $VAR, ***, "password"). Tests may spell out
// made-up ones (parsing and redaction of connection strings is what they test); nothing else may.
const URL_PASSWORD =
  /\b(?:postgres(?:ql)?|redis|rediss|amqp|mysql):\/\/[^:\s/@]+:(?![<$*{]|password@|pass@|secret@)[^@\s]{4,}@/g;

/** Fixtures that look like secrets on purpose, each with the reason; a new one must be added here knowingly. */
const ALLOWED: { file: string; match: string; reason: string }[] = [
  {
    file: "lib/telemetry/redact.test.ts",
    match: `${"sk_"}live_51HabcdefGHIJKL`,
    reason: "made-up key the log scrubber must mask",
  },
  {
    file: "test/telemetry/logging.test.ts",
    match: `${"sk_"}live_51HxTestKey0123456789abcdef`,
    reason: "made-up key the request log must never contain",
  },
];

const isTest = (file: string) => /\.test\.ts$/.test(file) || file.startsWith("test/");

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) bits -= (n / s.length) * Math.log2(n / s.length);
  return bits;
}

/**
 * A random-looking token: hex of 32+ characters, or 24+ characters mixing lower case, upper case and digits, with
 * the entropy of random data (measured here: words, ids, hyphenated names stay under 4.2 bits per character; 24
 * random base64 characters are above 4.3). Digests are named as such (sha256:…, sha512-…) and skipped.
 */
function highEntropy(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?<![A-Za-z0-9+/_=-])([A-Za-z0-9+/_=-]{24,})/g)) {
    const token = m[1] as string;
    const before = text.slice(Math.max(0, (m.index ?? 0) - 8), m.index);
    if (/sha\d+[:-]$|integrity["']?:\s*["']?$/.test(before)) continue;
    const hex = /^[0-9a-f]+$/i.test(token);
    const classes = [/[a-z]/, /[A-Z]/, /[0-9]/].filter((r) => r.test(token)).length;
    if (
      (hex && token.length >= 32 && entropy(token) > 3.3) ||
      (!hex && classes === 3 && entropy(token) > 4.2)
    ) {
      found.push(token);
    }
  }
  return found;
}

export function findSecrets(file: string, text: string): Finding[] {
  const findings: Finding[] = [];
  const name = basename(file);
  if (/^\.env(\..+)?$/.test(name) && !/\.(example|sample|template)$/.test(name)) {
    findings.push({ file, rule: ".env file", match: name });
  }
  if (/\.(pem|key|p12|pfx|jks)$/.test(name)) findings.push({ file, rule: "key file", match: name });
  for (const [rule, pattern] of RULES) {
    for (const m of text.matchAll(new RegExp(pattern, "g"))) findings.push({ file, rule, match: m[0] });
  }
  if (!isTest(file) && !file.endsWith("package-lock.json")) {
    for (const m of text.matchAll(URL_PASSWORD))
      findings.push({ file, rule: "password in a URL", match: m[0] });
    for (const token of highEntropy(text)) findings.push({ file, rule: "high-entropy string", match: token });
  }
  return findings.filter((f) => !ALLOWED.some((a) => a.file === f.file && f.match.includes(a.match)));
}
