import { expect } from 'chai';
import { CLUSTER_ADDRESS, MAX_NODES, nodeAddress, nodeName, podRoutes, podSubnet } from '../../../local-cluster/cluster-network.ts';
import { parseEndpoint } from '../../../local-cluster/forwarder.ts';

describe('local cluster address plan', () => {
  it('puts the cluster namespace at .1 and node n at .(10+n), with pods in 10.244.n.0/24', () => {
    expect(nodeAddress({ name: 'cluster', index: 0 })).to.equal(CLUSTER_ADDRESS);
    expect(nodeAddress({ name: nodeName(1), index: 1 })).to.equal('10.250.0.11');
    expect(nodeAddress({ name: nodeName(MAX_NODES), index: MAX_NODES })).to.equal('10.250.0.254');
    expect(podSubnet({ name: nodeName(3), index: 3 })).to.equal('10.244.3.0/24');
    expect(nodeName(4)).to.equal('node-4');
  });

  it('refuses indexes outside the plan, and pods in the cluster namespace', () => {
    expect(() => nodeAddress({ name: 'x', index: MAX_NODES + 1 })).to.throw(/outside/);
    expect(() => nodeAddress({ name: 'x', index: -1 })).to.throw(/outside/);
    expect(() => nodeAddress({ name: 'x', index: 1.5 })).to.throw(/outside/);
    expect(() => podSubnet({ name: 'cluster', index: 0 })).to.throw(/no pods/);
  });

  it('routes every other node\'s pod subnet through that node, from a node and from the cluster namespace', () => {
    const nodes = [1, 2, 3].map((i) => ({ name: nodeName(i), index: i }));
    expect(podRoutes({ name: nodeName(2), index: 2 }, nodes)).to.deep.equal([
      { subnet: '10.244.1.0/24', via: '10.250.0.11' },
      { subnet: '10.244.3.0/24', via: '10.250.0.13' },
    ]);
    expect(podRoutes({ name: 'cluster', index: 0 }, nodes).map((r) => r.via)).to.deep.equal(['10.250.0.11', '10.250.0.12', '10.250.0.13']);
  });
});

describe('forwarder endpoints', () => {
  it('parses unix:<path> and tcp:<host>:<port>', () => {
    expect(parseEndpoint('unix:/tmp/x.sock')).to.deep.equal({ kind: 'unix', path: '/tmp/x.sock' });
    expect(parseEndpoint('tcp:10.250.0.1:6443')).to.deep.equal({ kind: 'tcp', host: '10.250.0.1', port: 6443 });
  });

  it('rejects anything else with the accepted forms', () => {
    for (const bad of ['unix:', 'tcp:10.0.0.1', 'tcp::80', 'udp:1.2.3.4:5', '/tmp/x.sock']) {
      expect(() => parseEndpoint(bad), bad).to.throw(/want unix:<path> or tcp:<host>:<port>/);
    }
  });
});
