import { expect } from 'chai';
import { actor, attributedWrites, containerUsage, countWrites, missingImages } from '../../../bench/peers-figures.ts';
import type { AuditWrite } from '../../../local-cluster/cluster-fixtures.ts';

function w(user: string, verb: string, resource: string, opts: { subresource?: string; code?: number } = {}): AuditWrite {
  return { user, verb, resource, subresource: opts.subresource, namespace: 'ns', name: 'x', code: opts.code ?? 200 };
}

describe('bench/peers-figures', () => {
  describe('countWrites', () => {
    it('counts writes by who and what, and the pods and Jobs the API server created', () => {
      const c = countWrites([
        w('kubernetes-admin', 'create', 'jobs', { code: 201 }),
        w('system:serviceaccount:kube-system:job-controller', 'create', 'pods', { code: 201 }),
        w('system:kube-scheduler', 'create', 'pods', { subresource: 'binding', code: 201 }),
        w('system:node:node-1', 'patch', 'pods', { subresource: 'status' }),
        w('system:node:node-2', 'patch', 'pods', { subresource: 'status' }),
        w('system:serviceaccount:kwarm-system:kwarm-agent', 'patch', 'nodeimagesets', { subresource: 'status' }),
      ]);
      expect(c.total).to.equal(6);
      expect(c.jobsCreated).to.equal(1);
      expect(c.podsCreated).to.equal(1);
      expect(c.byKind).to.deep.equal({
        'kubernetes-admin: create jobs': 1,
        'job-controller: create pods': 1,
        'scheduler: create pods/binding': 1,
        'kubelet: patch pods/status': 2,
        'kwarm-system/kwarm-agent: patch nodeimagesets/status': 1,
      });
    });

    it('leaves Lease renewals out and does not count a refused create as created', () => {
      const c = countWrites([
        w('system:node:node-1', 'update', 'leases'),
        w('system:serviceaccount:kwarm-system:kwarm-controller', 'update', 'leases'),
        w('kubernetes-admin', 'create', 'jobs', { code: 409 }),
      ]);
      expect(c.total).to.equal(1);
      expect(c.jobsCreated).to.equal(0);
    });

    it('reads audit log lines and names the controller from its User-Agent when controllers share a user', () => {
      const entry = (verb: string, resource: string, userAgent: string, code: number): string => JSON.stringify({
        kind: 'Event', level: 'Metadata', stage: 'ResponseComplete', verb, userAgent,
        user: { username: 'kwarm-admin', groups: ['system:masters'] },
        objectRef: { resource, namespace: 'bench-peers', apiVersion: 'v1' }, responseStatus: { code },
      });
      const ds = entry('create', 'pods', 'kube-controller-manager/v1.34.10 (linux/amd64) kubernetes/$Format/daemon-set-controller', 201);
      const text = [
        ds, ds,
        entry('create', 'daemonsets', 'kubectl/v1.34.10 (linux/amd64) kubernetes/$Format', 201),
        JSON.stringify({ stage: 'RequestReceived', verb: 'create', user: { username: 'x' }, objectRef: { resource: 'pods' } }),
        '',
      ].join('\n');
      const writes = attributedWrites(text);
      expect(writes).to.have.length(3);
      const c = countWrites(writes);
      expect(c.podsCreated).to.equal(2);
      expect(c.byKind).to.deep.equal({ 'daemon-set-controller: create pods': 2, 'bench (kubectl): create daemonsets': 1 });
    });
  });

  it('names actors shortly', () => {
    expect(actor('system:node:node-3')).to.equal('kubelet');
    expect(actor('system:serviceaccount:kube-system:job-controller')).to.equal('job-controller');
    expect(actor('system:serviceaccount:kwarm-system:kwarm-agent')).to.equal('kwarm-system/kwarm-agent');
    expect(actor('system:kube-scheduler')).to.equal('scheduler');
    expect(actor('kubernetes-admin')).to.equal('kubernetes-admin');
    expect(actor('kwarm-admin', 'kube-scheduler/v1.34.10 (linux/amd64) kubernetes/$Format/scheduler')).to.equal('scheduler');
    expect(actor('kwarm-admin', 'kube-controller-manager/v1.34.10 (linux/amd64) kubernetes/$Format/job-controller')).to.equal('job-controller');
  });

  describe('containerUsage', () => {
    it('counts only the growth of containers that were there before, and all of new ones', () => {
      const u = containerUsage([
        { pass: 0, container: 'agent', cpuNs: 5e9, memoryBytes: 80e6 },
        { pass: 1, container: 'agent', cpuNs: 5.5e9, memoryBytes: 82e6 },
        { pass: 1, container: 'job', cpuNs: 0.1e9, memoryBytes: 3e6 },
        { pass: 2, container: 'agent', cpuNs: 6e9, memoryBytes: 81e6 },
        { pass: 2, container: 'job', cpuNs: 0.3e9, memoryBytes: 1e6 },
        { pass: 3, container: 'agent', cpuNs: 6e9, memoryBytes: 80e6 },
      ]);
      expect(u.cpuSeconds).to.be.closeTo(1.3, 1e-9);
      expect(u.peakMemoryBytes).to.equal(85e6);
      expect(u.containers).to.equal(2);
    });

    it('is zero without readings', () => {
      expect(containerUsage([])).to.deep.equal({ cpuSeconds: 0, peakMemoryBytes: 0, containers: 0 });
    });
  });

  it('lists the images a node still lacks', () => {
    expect(missingImages(['r/a:1', 'r/b:1'], ['r/a:1', 'other:2'])).to.deep.equal(['r/b:1']);
    expect(missingImages(['r/a:1'], ['r/a:1'])).to.deep.equal([]);
  });
});
