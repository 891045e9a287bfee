// Keeping credentials out of what the agent publishes: every message that may quote a registry's answer
// (status, logs, metrics labels never carry messages) passes through `redact` with the secret values of
// the credentials that were in play. Pure.

/**
 * Removes anything secret from a message before it is logged or published: each value is replaced
 * wherever it appears, also in its base64 forms (a docker-config `auth`).
 */
export function redact(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const s of secrets) {
    // Very short values would redact ordinary words; no real credential is that short.
    if (s.length < 4) continue;
    out = out.split(s).join('[redacted]');
  }
  return out;
}

/** The secret values of a username/password pair in every form a message could quote them. */
export function secretForms(username: string, password: string, tokens: readonly string[]): string[] {
  const forms = [...tokens, password];
  if (password !== '') forms.push(Buffer.from(`${username}:${password}`).toString('base64'));
  return forms.filter((f) => f !== '');
}

