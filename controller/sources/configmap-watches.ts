// One list-watch of ConfigMaps per distinct (namespace, label selector) the policies use, started and stopped
// as the policies change: per namespace when a policy names its namespaces, cluster-wide otherwise. The API
// server filters by both, and the cache keeps only identity and data, so the controller never holds every
// ConfigMap of the cluster, nor those of namespaces no policy reads. The start/stop bookkeeping is
// KeyedWatches'; keys are configMapWatchKey's.
import type { Logger } from 'winston';
import type { KubeClient } from '../../lib/kube-client.ts';
import { paths } from '../write/api-objects.ts';
import { decodeConfigMap } from './decode.ts';
import { configMapWatchScope } from '../derive/listed-images.ts';
import { projectedWatch } from './projected-watch.ts';
import type { ConfigMapView } from '../derive/configmap-image-lists.ts';
import { KeyedWatches } from './keyed-watches.ts';

export interface ConfigMapWatchesOptions {
  readonly client: KubeClient;
  readonly log: Logger;
  /** Something the controller reads changed (an object, or a watch finished its first list). */
  readonly onChange: () => void;
}

export class ConfigMapWatches extends KeyedWatches<ConfigMapView> {
  constructor(opts: ConfigMapWatchesOptions) {
    const { client, log, onChange } = opts;
    super({
      log, what: 'ConfigMaps', onChange,
      watch: (key) => {
        const { namespace, query } = configMapWatchScope(key);
        return projectedWatch<ConfigMapView>({
          client, log, labelSelector: query, decode: decodeConfigMap, onChange,
          path: namespace === '' ? paths.configMaps : paths.namespacedConfigMaps(namespace),
        });
      },
    });
  }

  /** The ConfigMaps of each watch that has listed once, by key. */
  synced(): Map<string, Iterable<ConfigMapView>> {
    return this.syncedByKey();
  }
}
