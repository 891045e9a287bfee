import { expect } from 'chai';
import { grpcTargetOf, socketPathOf } from '../../../agent/cri/endpoint.ts';

describe('cri/endpoint', () => {
  it('accepts a plain socket path', () => {
    expect(socketPathOf('/run/containerd/containerd.sock')).to.equal('/run/containerd/containerd.sock');
  });

  it('accepts unix:// and unix: URLs as the kubelet and crictl write them', () => {
    expect(socketPathOf('unix:///var/run/crio/crio.sock')).to.equal('/var/run/crio/crio.sock');
    expect(socketPathOf('unix:/run/k3s/containerd/containerd.sock')).to.equal('/run/k3s/containerd/containerd.sock');
    expect(socketPathOf('  unix:///run/x.sock\n')).to.equal('/run/x.sock');
  });

  it('rejects TCP endpoints and relative paths with the reason', () => {
    expect(() => socketPathOf('tcp://127.0.0.1:10010')).to.throw(/only unix sockets/);
    expect(() => socketPathOf('npipe:////./pipe/containerd')).to.throw(/only unix sockets/);
    expect(() => socketPathOf('run/containerd.sock')).to.throw(/must be absolute/);
    expect(() => socketPathOf('unix://relative.sock')).to.throw(/must be absolute/);
  });

  it('gives grpc-js a unix:/// target', () => {
    expect(grpcTargetOf('/run/containerd/containerd.sock')).to.equal('unix:///run/containerd/containerd.sock');
  });
});
