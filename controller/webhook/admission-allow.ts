// Placeholder handler for /mutate-pods until the rollout gate's decision is wired in (controller/gate): answers
// every AdmissionReview with allowed and no patch, so the webhook path, its TLS and the caBundle can be served
// and tested on their own. Pods are never refused.
import { field, str } from '../../lib/raw.ts';

export function allowAdmission(body: unknown): Promise<unknown> {
  const uid = str(field(body, 'request', 'uid'));
  if (uid === undefined) return Promise.reject(new Error('not an AdmissionReview: request.uid missing'));
  return Promise.resolve({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, allowed: true } });
}
