// ConfigMaps that list images: what a data key holds (a JSON array of references, image-cache-daemon's
// format, or one reference per line), checked with the CRD's own reference rule, and the label selector
// of a policy's spec.configMaps in the text form a list-watch sends to the API server. Pure: no I/O.
import { isImageReference, type LabelSelector } from '../../api/v1alpha1/index.ts';
import { compileLabelSelector, type Parsed } from '../plan/label-selector.ts';
import { errorText } from '../../lib/errors.ts';

/** What the controller keeps of a ConfigMap: its identity and its data, nothing else. */
export interface ConfigMapView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly data: Readonly<Record<string, string>>;
}

/** Images per ConfigMap beyond which the rest of it is ignored (and reported). */
export const MAX_CONFIGMAP_IMAGES = 1000;

export interface ImageListParse {
  readonly images: readonly string[];
  /** What is wrong with the text, for a human; empty when nothing is. */
  readonly errors: readonly string[];
}

function quote(s: string): string {
  const clipped = s.length > 80 ? `${s.slice(0, 77)}...` : s;
  return JSON.stringify(clipped);
}

/**
 * One data value. Text starting with `[` is a JSON array of strings; anything else is one reference per
 * line, with blank lines and `#` comments skipped and surrounding spaces trimmed. Valid references are
 * kept even when others are not, so one typo does not take a whole list off the nodes.
 */
export function parseImageList(text: string): ImageListParse {
  const trimmed = text.trim();
  const images: string[] = [];
  const errors: string[] = [];
  const check = (ref: string, where: string): void => {
    if (isImageReference(ref)) images.push(ref);
    else errors.push(`${where} ${quote(ref)} is not an image reference`);
  };
  if (trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      return { images: [], errors: [`not a valid JSON array: ${errorText(err)}`] };
    }
    if (!Array.isArray(parsed)) return { images: [], errors: ['not a valid JSON array'] };
    (parsed as unknown[]).forEach((item, i) => {
      if (typeof item === 'string') check(item, `item ${i + 1}`);
      else errors.push(`item ${i + 1} is not a string but ${item === null ? 'null' : Array.isArray(item) ? 'an array' : typeof item}`);
    });
    return { images, errors };
  }
  text.split(/\r?\n/u).forEach((line, i) => {
    const ref = line.trim();
    if (ref === '' || ref.startsWith('#')) return;
    check(ref, `line ${i + 1}`);
  });
  return { images, errors };
}

/** A problem with one key of one ConfigMap. */
export interface KeyProblem {
  readonly key: string;
  readonly message: string;
}

export interface ConfigMapImages {
  /** image → the data keys listing it, sorted; in key order of first appearance. */
  readonly images: ReadonlyMap<string, readonly string[]>;
  readonly problems: readonly KeyProblem[];
}

/** Every key of a ConfigMap, in key order; images listed by several keys appear once. */
export function configMapImages(cm: ConfigMapView): ConfigMapImages {
  const images = new Map<string, string[]>();
  const problems: KeyProblem[] = [];
  let dropped = 0;
  for (const key of Object.keys(cm.data).sort()) {
    const parsed = parseImageList(cm.data[key] ?? '');
    if (parsed.errors.length > 0) {
      const more = parsed.errors.length > 3 ? ` (and ${parsed.errors.length - 3} more)` : '';
      problems.push({ key, message: `${parsed.errors.slice(0, 3).join('; ')}${more}` });
    }
    for (const image of parsed.images) {
      const keys = images.get(image);
      if (keys !== undefined) {
        if (!keys.includes(key)) keys.push(key);
      } else if (images.size < MAX_CONFIGMAP_IMAGES) {
        images.set(image, [key]);
      } else {
        dropped++;
      }
    }
  }
  if (dropped > 0) problems.push({ key: '*', message: `more than ${MAX_CONFIGMAP_IMAGES} images; ${dropped} ignored` });
  return { images, problems };
}

function needsNoQuoting(values: readonly string[]): boolean {
  // Label values are [A-Za-z0-9_.-]; anything else would not survive the selector syntax (and is invalid anyway).
  return values.every((v) => /^[A-Za-z0-9_.-]*$/u.test(v));
}

/**
 * A LabelSelector as the `labelSelector` query parameter (`a=b,c in (d,e),!f`), after validating it as the
 * API server would; the empty selector is the empty string (every ConfigMap). Equal selectors in content
 * give equal text, so policies that agree share one list-watch.
 */
export function labelSelectorQuery(selector: LabelSelector): Parsed<string> {
  const compiled = compileLabelSelector(selector);
  if (!compiled.ok) return compiled;
  const parts: string[] = [];
  for (const r of compiled.value.requirements) {
    switch (r.operator) {
      case 'In':
      case 'NotIn': {
        const values = [...r.values].sort();
        if (!needsNoQuoting(values)) return { ok: false, error: `requirement ${JSON.stringify(r.key)}: invalid value` };
        parts.push(r.operator === 'In' && values.length === 1 ? `${r.key}=${values[0] ?? ''}` : `${r.key} ${r.operator.toLowerCase()} (${values.join(',')})`);
        break;
      }
      case 'Exists':
        parts.push(r.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${r.key}`);
        break;
      case 'Gt':
      case 'Lt':
        return { ok: false, error: `requirement ${JSON.stringify(r.key)}: ${r.operator} is not a label selector operator` };
      default: {
        const unreachable: never = r;
        return unreachable;
      }
    }
  }
  return { ok: true, value: [...new Set(parts)].sort().join(',') };
}
