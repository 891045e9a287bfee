// Where the time of a window went on the bench's API server, read from its /metrics before and after:
// its CPU, how long it took to serve NodeImageSet spec writes (the controller's applies) and status writes
// (the simulated agents' patches), and how long API Priority and Fairness queued requests. Together with
// the machine's busy share and the bench's own CPU, this tells a slow controller from a starved API server.
import { metricValue } from '../local-cluster/controller-process.ts';

export interface ApiServerSample {
  readonly cpuSeconds: number;
  readonly specWrites: { readonly count: number; readonly seconds: number };
  readonly statusWrites: { readonly count: number; readonly seconds: number };
  readonly queued: { readonly count: number; readonly seconds: number };
  readonly rejected: number;
}

/** The figures of one /metrics text of kube-apiserver. */
export function apiServerSample(text: string): ApiServerSample {
  const nis = { group: 'kwarm.io', resource: 'nodeimagesets' };
  const timed = (labels: Record<string, string>): { count: number; seconds: number } => ({
    count: metricValue(text, 'apiserver_request_duration_seconds_count', labels) ?? 0,
    seconds: metricValue(text, 'apiserver_request_duration_seconds_sum', labels) ?? 0,
  });
  return {
    cpuSeconds: metricValue(text, 'process_cpu_seconds_total') ?? 0,
    specWrites: timed({ ...nis, subresource: '', verb: 'APPLY' }),
    statusWrites: timed({ ...nis, subresource: 'status', verb: 'PATCH' }),
    queued: {
      count: metricValue(text, 'apiserver_flowcontrol_request_wait_duration_seconds_count') ?? 0,
      seconds: metricValue(text, 'apiserver_flowcontrol_request_wait_duration_seconds_sum') ?? 0,
    },
    rejected: metricValue(text, 'apiserver_flowcontrol_rejected_requests_total') ?? 0,
  };
}

/** One line on the window between two samples, `wallSeconds` long. */
export function describeApiServerWindow(a: ApiServerSample, b: ApiServerSample, wallSeconds: number): string {
  const mean = (x: { count: number; seconds: number }, y: { count: number; seconds: number }): string => {
    const n = y.count - x.count;
    return `${n} at ${n > 0 ? ((y.seconds - x.seconds) / n * 1000).toFixed(0) : '-'} ms mean`;
  };
  const cpu = b.cpuSeconds - a.cpuSeconds;
  return `CPU ${cpu.toFixed(1)} s in ${wallSeconds.toFixed(1)} s (${(cpu / Math.max(0.001, wallSeconds)).toFixed(2)} cores); ` +
    `NodeImageSet applies ${mean(a.specWrites, b.specWrites)}, status patches ${mean(a.statusWrites, b.statusWrites)}; ` +
    `APF queue wait ${mean(a.queued, b.queued)}, rejected ${b.rejected - a.rejected}`;
}
