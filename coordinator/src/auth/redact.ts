/**
 * Secrets a log tail must not carry to anyone who can read it (issue 15): a worker's or agent's
 * log may echo its environment or a failing request. Only the token's kind stays visible, so a
 * reader still sees *that* a token was printed. Patterns, not a list of known values: the
 * coordinator does not know the worker's secrets.
 */
const PATTERNS: [RegExp, string][] = [
  // Our own tokens (auth/tokens.ts: arg_wrk_…, arg_adm_…).
  [/\barg_[a-z]{2,6}_[A-Za-z0-9_-]{8,}/g, 'arg_…[redacted]'],
  // Anthropic, OpenAI and similar provider keys.
  [/\bsk-(?:ant-)?[A-Za-z0-9_-]{8,}/g, 'sk-…[redacted]'],
  // GitHub, Hugging Face, AWS access key ids, Slack, Google API keys.
  [/\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,})/g, '[redacted key]'],
  // Authorization headers.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]'],
  // NAME=value and "name": "value" where the name says it is a secret.
  [/\b([A-Za-z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Za-z0-9_]*)(\s*[=:]\s*["']?)[^\s"']{4,}/gi, '$1$2[redacted]'],
]

export function redactSecrets(text: string): string {
  let out = text
  for (const [re, by] of PATTERNS) out = out.replace(re, by)
  return out
}
