// The one way kwarm turns a thrown value into text for logs, status messages and Events.

/** The message of an Error, or the value itself as text when something other than an Error was thrown. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
