// The rollout gate's API: which workloads' new pods wait (scheduling gate) until their images are warm, for how
// long, and the gate's name on Pods. Shared by the CRD, the controller's webhook and release loop, and the docs.
import * as s from '../schema.ts';
import { boundedDuration } from './duration.ts';
import { ROLLOUT_GATE_NAME } from './labels.ts';

/** Default time after a pod's creation at which its gate is removed whatever the images (fail open). */
export const DEFAULT_ROLLOUT_GATE_TIMEOUT = '5m';
export const MIN_ROLLOUT_GATE_TIMEOUT = '10s';
export const MAX_ROLLOUT_GATE_TIMEOUT = '24h';

export const rolloutGateSchema = s.object({
  enabled: s.boolean({
    description: `New pods of the policy's Deployments and StatefulSets are created with the scheduling gate ${ROLLOUT_GATE_NAME} while the images the policy pre-pulls for them are not yet warm, and scheduled once they are (or at the timeout). Needs the controller's --rollout-gate (Helm rolloutGate.enabled), which installs the webhook.`,
  }).default(false),
  timeout: boundedDuration(
    MIN_ROLLOUT_GATE_TIMEOUT,
    MAX_ROLLOUT_GATE_TIMEOUT,
    `From a pod's creation to the removal of its gate whatever the images (fail open); ${MIN_ROLLOUT_GATE_TIMEOUT} to ${MAX_ROLLOUT_GATE_TIMEOUT}.`,
  ).default(DEFAULT_ROLLOUT_GATE_TIMEOUT),
}, {
  description: 'Hold new pods of the selected workloads (scheduling gate) until their images are warm: every image of the pod that the policy pre-pulls is Completed on every target node of its PrePullImage whose kwarm-agent reports (failed nodes do not hold it), and on at least one node. Gated pods do not trigger Cluster Autoscaler or Karpenter scale-up.',
});
