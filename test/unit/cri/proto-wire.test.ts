// The proto file against the CRI wire format: requests encode with the CRI's field numbers, and
// responses decode even when a newer runtime adds fields this proto does not know.
import { expect } from 'chai';
import { decodeImageFsInfo, decodeImageStatus, decodeVersion } from '../../../agent/cri/decode.ts';
import { loadCriProto, type CriProto } from '../../../agent/cri/grpc-runtime.ts';

// Minimal protobuf encoder, written out so the expected bytes do not come from the code under test.
function varint(n: bigint | number): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? byte | 0x80 : byte);
  } while (v > 0n);
  return Buffer.from(out);
}
const key = (field: number, wireType: number): Buffer => varint((field << 3) | wireType);
const num = (field: number, n: bigint | number): Buffer => Buffer.concat([key(field, 0), varint(n)]);
const bytes = (field: number, payload: Buffer): Buffer => Buffer.concat([key(field, 2), varint(payload.length), payload]);
const str = (field: number, s: string): Buffer => bytes(field, Buffer.from(s));
const msg = (field: number, ...parts: Buffer[]): Buffer => bytes(field, Buffer.concat(parts));

describe('cri proto on the wire', () => {
  let proto: CriProto;
  before(() => {
    proto = loadCriProto();
  });

  const method = (service: 'imageService' | 'runtimeService', name: string) => {
    const def = proto[service][name];
    if (def === undefined) throw new Error(`no ${name} in ${service}`);
    return def;
  };

  it('serves the CRI method paths', () => {
    expect(method('imageService', 'PullImage').path).to.equal('/runtime.v1.ImageService/PullImage');
    expect(method('imageService', 'ImageFsInfo').path).to.equal('/runtime.v1.ImageService/ImageFsInfo');
    expect(method('runtimeService', 'Version').path).to.equal('/runtime.v1.RuntimeService/Version');
    expect(method('runtimeService', 'ListContainers').path).to.equal('/runtime.v1.RuntimeService/ListContainers');
  });

  it('encodes PullImageRequest with ImageSpec = 1 and AuthConfig = 2 and its six fields', () => {
    const encoded = method('imageService', 'PullImage').requestSerialize({
      image: { image: 'r.example/a:1', annotations: {} },
      auth: { username: 'u', password: 'p', auth: 'dTpw', serverAddress: 'r.example', identityToken: 'i', registryToken: 't' },
    });
    const expected = Buffer.concat([
      msg(1, str(1, 'r.example/a:1')),
      msg(2, str(1, 'u'), str(2, 'p'), str(3, 'dTpw'), str(4, 'r.example'), str(5, 'i'), str(6, 't')),
    ]);
    expect(encoded.toString('hex')).to.equal(expected.toString('hex'));
  });

  it('encodes ImageSpec annotations as map field 2', () => {
    const encoded = method('imageService', 'ImageStatus').requestSerialize({ image: { image: 'x', annotations: { k: 'v' } }, verbose: true });
    const expected = Buffer.concat([msg(1, str(1, 'x'), msg(2, str(1, 'k'), str(2, 'v'))), num(2, 1)]);
    expect(encoded.toString('hex')).to.equal(expected.toString('hex'));
  });

  it('encodes VersionRequest and a ListContainers state filter', () => {
    expect(method('runtimeService', 'Version').requestSerialize({ version: 'v1' }).toString('hex')).to.equal(str(1, 'v1').toString('hex'));
    const filter = method('runtimeService', 'ListContainers').requestSerialize({ filter: { state: { state: 'CONTAINER_RUNNING' } } });
    expect(filter.toString('hex')).to.equal(msg(1, msg(2, num(1, 1))).toString('hex'));
  });

  it('decodes an ImageStatusResponse carrying fields it does not know', () => {
    const wire = Buffer.concat([
      msg(
        1,
        str(1, 'sha256:aa'),
        str(2, 'r.example/a:1'),
        str(3, 'r.example/a@sha256:bb'),
        num(4, 52_430_000),
        msg(5, num(1, 0)),
        str(6, ''),
        num(8, 1),
        str(9, 'unknown string field'),
        num(42, 7),
      ),
      msg(2, str(1, 'info'), str(2, '{}')),
      str(77, 'unknown top-level field'),
    ]);
    const image = decodeImageStatus(method('imageService', 'ImageStatus').responseDeserialize(wire));
    expect(image).to.deep.equal({
      id: 'sha256:aa',
      repoTags: ['r.example/a:1'],
      repoDigests: ['r.example/a@sha256:bb'],
      sizeBytes: 52_430_000,
      pinned: true,
      username: '',
      uid: 0,
    });
  });

  it('decodes an empty ImageStatusResponse as "not present"', () => {
    expect(decodeImageStatus(method('imageService', 'ImageStatus').responseDeserialize(Buffer.alloc(0)))).to.equal(undefined);
  });

  it('decodes ImageFsInfoResponse 64-bit figures exactly', () => {
    const wire = msg(
      1,
      num(1, 1_700_000_000_123_000_000n),
      msg(2, str(1, '/var/lib/containerd/io.containerd.snapshotter.v1.native')),
      msg(3, num(1, 5_000_000_000_123n)),
      msg(4, num(1, 321)),
    );
    const info = decodeImageFsInfo(method('imageService', 'ImageFsInfo').responseDeserialize(wire));
    expect(info.imageFilesystems).to.deep.equal([
      {
        timestamp: new Date(1_700_000_000_123),
        mountpoint: '/var/lib/containerd/io.containerd.snapshotter.v1.native',
        usedBytes: 5_000_000_000_123,
        inodesUsed: 321,
      },
    ]);
  });

  it('decodes VersionResponse fields 1 to 4', () => {
    const wire = Buffer.concat([str(1, '0.1.0'), str(2, 'containerd'), str(3, '1.6.20'), str(4, 'v1')]);
    expect(decodeVersion(method('runtimeService', 'Version').responseDeserialize(wire))).to.deep.equal({
      version: '0.1.0',
      runtimeName: 'containerd',
      runtimeVersion: '1.6.20',
      runtimeApiVersion: 'v1',
    });
  });
});
