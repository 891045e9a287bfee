// Label requirements and LabelSelectors with the semantics of k8s.io/apimachinery's `labels` package.
// Pure: no I/O. Selectors are compiled once (validated, values put in sets) and then matched many times,
// because the controller evaluates every selector against every node or workload on each reconcile.

export type LabelSet = Readonly<Record<string, string>>;

/** metav1.LabelSelector as data. client-node's V1LabelSelector and kwarm's own API types both fit it. */
export interface LabelSelector {
  readonly matchLabels?: LabelSet;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

/** `Gt`/`Lt` exist only in node selector requirements; metav1.LabelSelector allows the first four. */
export type RequirementOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

export const labelSelectorOperators: readonly RequirementOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
export const nodeSelectorOperators: readonly RequirementOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'];

export type LabelRequirement =
  | { readonly key: string; readonly operator: 'In' | 'NotIn'; readonly values: ReadonlySet<string> }
  | { readonly key: string; readonly operator: 'Exists' | 'DoesNotExist' }
  | { readonly key: string; readonly operator: 'Gt' | 'Lt'; readonly bound: bigint };

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A compiled selector: the AND of its requirements. No requirements selects everything. */
export interface CompiledLabelSelector {
  readonly requirements: readonly LabelRequirement[];
}

/** What an absent (null) selector means is the caller's decision; Kubernetes itself uses both. */
export type AbsentSelector = 'matchesEverything' | 'matchesNothing';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const INT64_TEXT = /^[+-]?[0-9]+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A label key: optional DNS-subdomain prefix (≤253) and '/', then a name (≤63). */
export function isValidLabelKey(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1] ?? '';
  if (name.length > 63 || !QUALIFIED_NAME_PART.test(name)) return false;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    return prefix.length > 0 && prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix);
  }
  return true;
}

export function isValidLabelValue(value: string): boolean {
  return value.length <= 63 && LABEL_VALUE.test(value);
}

/** A label's value, or undefined when absent; own properties only, so keys like `constructor` are safe. */
export function labelValue(labels: LabelSet, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, int64 range; anything else is not a number. */
export function parseInt64(text: string): bigint | undefined {
  if (!INT64_TEXT.test(text)) return undefined;
  const n = BigInt(text);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

function isOperator(op: string, allowed: readonly RequirementOperator[]): op is RequirementOperator {
  return (allowed as readonly string[]).includes(op);
}

/** Validates one requirement the way labels.NewRequirement does and compiles it. */
export function parseRequirement(
  key: string,
  operator: string,
  values: readonly string[] | undefined,
  allowed: readonly RequirementOperator[],
): Parsed<LabelRequirement> {
  const vals = values ?? [];
  const where = `requirement ${JSON.stringify(key)} ${operator}`;
  if (!isValidLabelKey(key)) return { ok: false, error: `${where}: invalid label key` };
  if (!isOperator(operator, allowed)) return { ok: false, error: `${where}: unsupported operator` };
  const badValue = vals.find((v) => !isValidLabelValue(v));
  if (badValue !== undefined) return { ok: false, error: `${where}: invalid label value ${JSON.stringify(badValue)}` };
  switch (operator) {
    case 'In':
    case 'NotIn':
      if (vals.length === 0) return { ok: false, error: `${where}: values must not be empty` };
      return { ok: true, value: { key, operator, values: new Set(vals) } };
    case 'Exists':
    case 'DoesNotExist':
      if (vals.length !== 0) return { ok: false, error: `${where}: values must be empty` };
      return { ok: true, value: { key, operator } };
    case 'Gt':
    case 'Lt': {
      const bound = vals.length === 1 && vals[0] !== undefined ? parseInt64(vals[0]) : undefined;
      if (bound === undefined) return { ok: false, error: `${where}: needs exactly one integer value` };
      return { ok: true, value: { key, operator, bound } };
    }
    default: {
      const unreachable: never = operator;
      return unreachable;
    }
  }
}

/**
 * labels.Requirement.Matches: NotIn and DoesNotExist hold when the label is absent; In, Exists, Gt
 * and Lt need it present; Gt/Lt compare as int64 and fail when the label's value is not an integer.
 */
export function requirementMatches(req: LabelRequirement, labels: LabelSet): boolean {
  const value = labelValue(labels, req.key);
  const present = value !== undefined;
  switch (req.operator) {
    case 'In':
      return value !== undefined && req.values.has(value);
    case 'NotIn':
      return value === undefined || !req.values.has(value);
    case 'Exists':
      return present;
    case 'DoesNotExist':
      return !present;
    case 'Gt':
    case 'Lt': {
      if (value === undefined) return false;
      const n = parseInt64(value);
      if (n === undefined) return false;
      return req.operator === 'Gt' ? n > req.bound : n < req.bound;
    }
    default: {
      const unreachable: never = req;
      return unreachable;
    }
  }
}

/**
 * metav1.LabelSelectorAsSelector for a present selector: matchLabels become equality requirements,
 * matchExpressions allow In/NotIn/Exists/DoesNotExist; empty selects everything. The first invalid
 * requirement makes the whole selector invalid, as in Kubernetes.
 */
export function compileLabelSelector(selector: LabelSelector): Parsed<CompiledLabelSelector> {
  const requirements: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    const parsed = parseRequirement(key, 'In', [value], labelSelectorOperators);
    if (!parsed.ok) return { ok: false, error: `matchLabels: ${parsed.error}` };
    requirements.push(parsed.value);
  }
  for (const expr of selector.matchExpressions ?? []) {
    const parsed = parseRequirement(expr.key, expr.operator, expr.values, labelSelectorOperators);
    if (!parsed.ok) return { ok: false, error: `matchExpressions: ${parsed.error}` };
    requirements.push(parsed.value);
  }
  return { ok: true, value: { requirements } };
}

export function compiledSelectorMatches(selector: CompiledLabelSelector, labels: LabelSet | undefined): boolean {
  const set = labels ?? {};
  return selector.requirements.every((r) => requirementMatches(r, set));
}

/**
 * One-shot match. An absent selector means what `whenAbsent` says (Kubernetes: a nil selector in
 * most workload APIs matches nothing, a defaulted policy field usually everything). An invalid selector
 * matches nothing, so a typo never widens a selection; use compileLabelSelector to report the error.
 */
export function matchesLabelSelector(
  selector: LabelSelector | undefined,
  labels: LabelSet | undefined,
  whenAbsent: AbsentSelector,
): boolean {
  if (selector === undefined) return whenAbsent === 'matchesEverything';
  const compiled = compileLabelSelector(selector);
  return compiled.ok && compiledSelectorMatches(compiled.value, labels);
}
