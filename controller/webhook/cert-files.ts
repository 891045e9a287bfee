// Webhook TLS from files (cert-manager writes tls.crt and tls.key into a mounted Secret volume): read at start
// and again whenever the directory changes (the kubelet swaps the volume's ..data link on an update), with a
// periodic re-read in case a change notification is missed.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'winston';
import { errorText } from '../../lib/errors.ts';
import { Wakeup } from '../../lib/wakeup.ts';
import type { ServingMaterial } from './https-server.ts';

export const CERT_FILE = 'tls.crt';
export const KEY_FILE = 'tls.key';

export interface CertFilesOptions {
  readonly dir: string;
  readonly log: Logger;
  /** Called with the files' contents when they differ from the last call; a throw (Node cannot load them) is logged. */
  readonly onMaterial: (m: ServingMaterial) => void;
  /** Re-read this often even without a change notification. */
  readonly pollMs?: number;
}

export class CertFiles {
  readonly #o: CertFilesOptions;
  #problem: string | undefined = 'certificate files not read yet';

  constructor(o: CertFilesOptions) {
    this.#o = o;
  }

  get problem(): string | undefined {
    return this.#problem;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { dir, log } = this.#o;
    const wake = new Wakeup();
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(dir, () => { wake.wake(); });
      watcher.on('error', (err) => { log.warn('webhook certificate files: watch failed; polling only', { dir, error: errorText(err) }); });
    } catch (err) {
      log.warn('webhook certificate files: cannot watch the directory; polling only', { dir, error: errorText(err) });
    }
    let last: ServingMaterial | undefined;
    try {
      while (!signal.aborted) {
        try {
          const m = { cert: await readFile(join(dir, CERT_FILE), 'utf8'), key: await readFile(join(dir, KEY_FILE), 'utf8') };
          if (last?.cert !== m.cert || last.key !== m.key) {
            this.#o.onMaterial(m);
            last = m;
            log.info('webhook certificate files loaded', { dir });
          }
          this.#problem = undefined;
        } catch (err) {
          const why = `cannot load ${join(dir, CERT_FILE)} and ${KEY_FILE}: ${errorText(err)}`;
          if (why !== this.#problem) log.warn('webhook certificate files', { error: why });
          // A half-written pair keeps the last good certificate in service; the problem is still reported.
          this.#problem = why;
        }
        await wake.wait(this.#o.pollMs ?? 30_000, signal);
      }
    } finally {
      watcher?.close();
    }
  }
}
