// YAML for the generated files (CRDs, kustomization): js-yaml's dump, which already quotes every string a
// YAML 1.1 reader (go-yaml, as kubectl uses) could take for something else (yes, on, y, 1:30, 017, ...).
// Block style, keys in insertion order, no line folding, so the files diff line by line.
import { dump } from 'js-yaml';
import type { Json } from './schema.ts';

/** One YAML document (no leading `---`), ending with a newline. */
export function toYaml(value: Json): string {
  return dump(value, { lineWidth: -1, seqNoIndent: true, noRefs: true });
}
