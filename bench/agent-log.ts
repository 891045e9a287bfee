// When the agent says an image is on the node: its "image pulled" log line, written once PullImage
// returned and ImageStatus confirmed the image (the moment a pod could use it). Pure: works on the
// parsed JSON log entries.

/** Time (Unix ms) of the first "image pulled" entry for `image` at or after `since`. */
export function pulledAt(entries: readonly Readonly<Record<string, unknown>>[], image: string, since: number): number | undefined {
  for (const e of entries) {
    if (e.message !== 'image pulled' || e.image !== image || typeof e.timestamp !== 'string') continue;
    const at = Date.parse(e.timestamp);
    if (at >= since) return at;
  }
  return undefined;
}
