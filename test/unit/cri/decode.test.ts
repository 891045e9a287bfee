import { expect } from 'chai';
import {
  CriDecodeError,
  decodeContainer,
  decodeImageFsInfo,
  decodeImageStatus,
  decodeListImages,
  decodePullImage,
  decodeVersion,
  nanosToDate,
  uint64ToNumber,
} from '../../../agent/cri/decode.ts';

describe('cri/decode', () => {
  describe('uint64ToNumber', () => {
    it('reads decimal strings and integers', () => {
      expect(uint64ToNumber('0')).to.equal(0);
      expect(uint64ToNumber('52428800')).to.equal(52_428_800);
      expect(uint64ToNumber(4096)).to.equal(4096);
      expect(uint64ToNumber(undefined)).to.equal(0);
    });

    it('keeps exact values up to 2^53 and the nearest double above', () => {
      expect(uint64ToNumber('9007199254740991')).to.equal(Number.MAX_SAFE_INTEGER);
      expect(uint64ToNumber('18446744073709551615')).to.equal(2 ** 64);
    });

    it('rejects what is not an unsigned integer', () => {
      expect(() => uint64ToNumber('-1', 'Image.size')).to.throw(CriDecodeError, /Image\.size is not a uint64/);
      expect(() => uint64ToNumber('12abc')).to.throw(CriDecodeError);
      expect(() => uint64ToNumber(1.5)).to.throw(CriDecodeError);
      expect(() => uint64ToNumber({ low: 1, high: 0 })).to.throw(CriDecodeError);
    });
  });

  it('nanosToDate turns int64 nanoseconds into a Date', () => {
    expect(nanosToDate('1700000000123456789').toISOString()).to.equal('2023-11-14T22:13:20.123Z');
    expect(nanosToDate(undefined).getTime()).to.equal(0);
  });

  it('decodes VersionResponse', () => {
    expect(
      decodeVersion({ version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20', runtimeApiVersion: 'v1' }),
    ).to.deep.equal({ version: '0.1.0', runtimeName: 'containerd', runtimeVersion: '1.6.20', runtimeApiVersion: 'v1' });
  });

  it('decodes ListImagesResponse with sizes as numbers and optional uid', () => {
    const images = decodeListImages({
      images: [
        {
          id: 'sha256:aa',
          repoTags: ['r.example/a:1'],
          repoDigests: ['r.example/a@sha256:bb'],
          size: '123456',
          uid: { value: '1000' },
          username: '',
          spec: null,
          pinned: true,
          someFutureField: 'ignored',
        },
        { id: 'sha256:cc', repoTags: [], repoDigests: [], size: '1', uid: null, username: 'nobody', pinned: false },
      ],
    });
    expect(images).to.deep.equal([
      { id: 'sha256:aa', repoTags: ['r.example/a:1'], repoDigests: ['r.example/a@sha256:bb'], sizeBytes: 123456, pinned: true, username: '', uid: 1000 },
      { id: 'sha256:cc', repoTags: [], repoDigests: [], sizeBytes: 1, pinned: false, username: 'nobody' },
    ]);
  });

  it('reads an unset or empty ImageStatusResponse.image as "not present"', () => {
    expect(decodeImageStatus({ image: null, info: {} })).to.equal(undefined);
    expect(decodeImageStatus({})).to.equal(undefined);
    expect(decodeImageStatus({ image: { id: '', repoTags: [], repoDigests: [], size: '0' } })).to.equal(undefined);
    expect(decodeImageStatus({ image: { id: 'sha256:aa', size: '7' } })?.sizeBytes).to.equal(7);
  });

  it('names the field that has the wrong type', () => {
    expect(() => decodeListImages({ images: [{ id: 5 }] })).to.throw(CriDecodeError, /ListImagesResponse\.images\[0\]\.id is not a string/);
    expect(() => decodeListImages({ images: {} })).to.throw(CriDecodeError, /images is not a list/);
    expect(() => decodeVersion('nope')).to.throw(CriDecodeError, /VersionResponse is not a message/);
    expect(() => decodeListImages({ images: [{ id: 'x', repoTags: ['a', 3] }] })).to.throw(CriDecodeError, /repoTags\[1\]/);
  });

  it('decodes PullImageResponse', () => {
    expect(decodePullImage({ imageRef: 'sha256:dd' })).to.equal('sha256:dd');
  });

  it('decodes ImageFsInfoResponse, keeping absent usage figures undefined', () => {
    const info = decodeImageFsInfo({
      imageFilesystems: [
        { timestamp: '1700000000000000000', fsId: { mountpoint: '/var/lib/containerd/snapshots' }, usedBytes: { value: '2048' }, inodesUsed: null },
      ],
      containerFilesystems: [],
    });
    expect(info.containerFilesystems).to.deep.equal([]);
    expect(info.imageFilesystems).to.have.length(1);
    const fs = info.imageFilesystems[0]!;
    expect(fs.mountpoint).to.equal('/var/lib/containerd/snapshots');
    expect(fs.usedBytes).to.equal(2048);
    expect(fs.inodesUsed).to.equal(undefined);
    expect(fs.timestamp.getTime()).to.equal(1_700_000_000_000);
  });

  it('decodes containers, mapping states and tolerating states it does not know', () => {
    const base = {
      id: 'c1',
      podSandboxId: 'p1',
      metadata: { name: 'app', attempt: 2 },
      image: { image: 'r.example/a:1', annotations: {} },
      imageRef: 'sha256:aa',
      createdAt: '1700000000000000000',
      labels: { 'io.kubernetes.pod.name': 'x' },
      annotations: {},
    };
    const running = decodeContainer({ ...base, state: 'CONTAINER_RUNNING' });
    expect(running).to.deep.equal({
      id: 'c1',
      podSandboxId: 'p1',
      name: 'app',
      attempt: 2,
      image: 'r.example/a:1',
      imageRef: 'sha256:aa',
      imageId: '',
      state: 'running',
      createdAt: new Date(1_700_000_000_000),
      labels: { 'io.kubernetes.pod.name': 'x' },
    });
    expect(decodeContainer({ ...base, state: 'CONTAINER_EXITED' }).state).to.equal('exited');
    expect(decodeContainer({ ...base, state: 7 }).state).to.equal('unknown');
    expect(decodeContainer({ ...base, state: 'CONTAINER_PAUSED_IN_SOME_FUTURE' }).state).to.equal('unknown');
  });
});
