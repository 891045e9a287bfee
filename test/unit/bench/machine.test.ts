import { expect } from 'chai';
import { loadLine, machineLine, type LoadSummary, type Machine } from '../../../bench/machine.ts';

const machine: Machine = {
  cores: 2,
  cpuModel: 'Test CPU @ 2.0GHz',
  memoryGiB: 23.5,
  kernel: '6.1.0-test',
  node: 'v22.23.3',
  containerd: 'containerd 1.6.20',
  kubernetes: 'Kubernetes v1.34.10',
  etcd: 'etcd Version: 3.6.16',
  registry: 'docker-registry 2.8.2',
  revision: 'abc1234',
};

describe('bench/machine', () => {
  it('describes the machine and every real part\'s version on one line', () => {
    expect(machineLine(machine)).to.equal(
      '2 cores (Test CPU @ 2.0GHz), 23.5 GiB, Linux 6.1.0-test; Node v22.23.3; containerd 1.6.20; Kubernetes v1.34.10; etcd Version: 3.6.16; docker-registry 2.8.2',
    );
  });

  it('states the load before and during the run, load averages to two decimals', () => {
    const load: LoadSummary = {
      busyBeforePercent: 12.3, loadAverageStart: 1.5, loadAverageEnd: 0.456, busyDuringMeanPercent: 60.2, busyDuringMaxPercent: 99.9,
    };
    expect(loadLine(load)).to.equal(
      'machine busy 12.3 % before the run (other work); during it 60.2 % mean, 99.9 % in the busiest 5 s; load average 1.50 -> 0.46',
    );
  });
});
