// Images that can actually run, built around Debian's static busybox (package busybox-static): a pod
// sandbox ("pause") image and app images that sleep. Each app image carries a random layer too, so two
// of them (and the sandbox image) never share an image id.
import { existsSync, readFileSync } from 'node:fs';
import { buildAndPushImage, type PushedImage, type PushTarget } from './oci-image.ts';

export const BUSYBOX = '/bin/busybox';

function busybox(): Buffer {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install the Debian package busybox-static (local-cluster/tools/setup.sh does)`);
  return readFileSync(BUSYBOX);
}

/** An image whose entrypoint sleeps for a day: the sandbox image, or an app a container runs. */
export async function pushSleeperImage(target: PushTarget, repository: string, tag: string, randomBytes = 4096): Promise<PushedImage> {
  return buildAndPushImage(target, {
    repository,
    tag,
    files: [{ path: 'bin/busybox', content: busybox(), mode: 0o755 }],
    layers: randomBytes > 0 ? [randomBytes] : [],
    entrypoint: ['/bin/busybox', 'sleep', '86400'],
  });
}
