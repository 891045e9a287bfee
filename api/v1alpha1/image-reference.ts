// Image references and digests as the API accepts them. The patterns are written for both RE2 (CEL's
// `matches`, run by the API server) and JavaScript (the decoder): no backslashes, no lookaround.
import * as s from '../schema.ts';

const HOST_LABEL = '[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?';
const PORT = ':[0-9]{1,5}';
// A first path component is a registry host only when it looks like one (a dot, a port or localhost),
// as container runtimes decide; anything else is part of the lowercase repository path.
const REGISTRY = `(localhost(${PORT})?|${HOST_LABEL}([.]${HOST_LABEL})+(${PORT})?|${HOST_LABEL}${PORT})`;
const PATH_COMPONENT = '[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*';
const TAG = ':[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}';
const DIGEST = '@sha256:[a-f0-9]{64}';

/** `[registry[:port]/]lowercase/path[:tag][@sha256:<64 hex>]`. */
export const IMAGE_REFERENCE_PATTERN = `^(${REGISTRY}/)?${PATH_COMPONENT}(/${PATH_COMPONENT})*(${TAG})?(${DIGEST})?$`;
/** True when the name, without tag and digest, has at most 255 characters (the registry limit). */
export const IMAGE_NAME_LENGTH_PATTERN = '^[^@]{0,255}(:[^:/@]*)?(@.*)?$';
export const IMAGE_DIGEST_PATTERN = '^sha256:[a-f0-9]{64}$';

export const MAX_IMAGE_REFERENCE_LENGTH = 512;
export const MAX_IMAGE_NAME_LENGTH = 255;

const imageReferenceRe = new RegExp(IMAGE_REFERENCE_PATTERN, 'u');
const imageNameLengthRe = new RegExp(IMAGE_NAME_LENGTH_PATTERN, 'u');
const imageDigestRe = new RegExp(IMAGE_DIGEST_PATTERN, 'u');

export const IMAGE_REFERENCE_MESSAGE =
  'must be an image reference [registry[:port]/]repository[:tag][@sha256:<64 hex digits>]: lowercase repository path, ' +
  'tag of at most 128 characters from [A-Za-z0-9_.-] not starting with . or -, no spaces or shell characters';
export const IMAGE_NAME_LENGTH_MESSAGE = `the image name without tag and digest must be at most ${MAX_IMAGE_NAME_LENGTH} characters`;
export const IMAGE_DIGEST_MESSAGE = 'must be sha256: followed by 64 lowercase hex digits';

export function isImageReference(value: string): boolean {
  return value.length <= MAX_IMAGE_REFERENCE_LENGTH && imageReferenceRe.test(value) && imageNameLengthRe.test(value);
}

export function isImageDigest(value: string): boolean {
  return imageDigestRe.test(value);
}

/** A string field holding an image reference, checked by the API server with CEL. */
export function imageReference(description: string): s.Schema<string> {
  return s.string({ minLength: 1, maxLength: MAX_IMAGE_REFERENCE_LENGTH, description }).validate(
    { rule: `self.matches('${IMAGE_REFERENCE_PATTERN}')`, message: IMAGE_REFERENCE_MESSAGE, check: (v) => imageReferenceRe.test(v) },
    { rule: `self.matches('${IMAGE_NAME_LENGTH_PATTERN}')`, message: IMAGE_NAME_LENGTH_MESSAGE, check: (v) => imageNameLengthRe.test(v) },
  );
}

export function imageDigest(description: string): s.Schema<string> {
  return s.string({ maxLength: 71, description }).validate({
    rule: `self.matches('${IMAGE_DIGEST_PATTERN}')`,
    message: IMAGE_DIGEST_MESSAGE,
    check: isImageDigest,
  });
}
