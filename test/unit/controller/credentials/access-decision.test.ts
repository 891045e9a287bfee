import { expect } from 'chai';
import {
  bearerToken, callerNode, isRefusal, MAX_NAMES, NODE_NAME_EXTRA, referencedSecrets, refuseUnreferenced, requestedNames, servedSecret,
} from '../../../../controller/credentials/access-decision.ts';

const AGENT = 'system:serviceaccount:kwarm-system:kwarm-agent';

describe('pull credentials access decision', () => {
  it('takes only a Bearer token from Authorization', () => {
    expect(bearerToken('Bearer abc.def')).to.equal('abc.def');
    expect(bearerToken('bearer abc')).to.equal('abc');
    expect(bearerToken(undefined)).to.equal(undefined);
    expect(bearerToken('Basic dTpw')).to.equal(undefined);
    expect(bearerToken('Bearer a b')).to.equal(undefined);
  });

  it('reads the names asked for, deduplicated, and refuses malformed bodies with 400', () => {
    expect(requestedNames({ names: ['a', 'b', 'a'] })).to.deep.equal(['a', 'b']);
    for (const body of [undefined, {}, { names: [] }, { names: 'a' }, { names: [1] }, { names: [''] }, { names: Array.from({ length: MAX_NAMES + 1 }, (_, i) => `s${i}`) }]) {
      const r = requestedNames(body);
      expect(isRefusal(r) && r.status, JSON.stringify(body)).to.equal(400);
    }
  });

  it('names the node only for the agent ServiceAccount with a node-bound token', () => {
    const status = (username: string, extra: Record<string, unknown> = { [NODE_NAME_EXTRA]: ['node-a'] }): unknown => ({ authenticated: true, user: { username, extra } });
    expect(callerNode(status(AGENT), 'kwarm-system', 'kwarm-agent')).to.deep.equal({ node: 'node-a' });
    expect(callerNode({ authenticated: false, error: 'token expired' }, 'kwarm-system', 'kwarm-agent')).to.deep.equal({ status: 401, reason: 'the token was not accepted by the API server: token expired' });
    expect(callerNode({}, 'kwarm-system', 'kwarm-agent')).to.include({ status: 401 });
    const other = callerNode(status('system:serviceaccount:kwarm-system:kwarm-controller'), 'kwarm-system', 'kwarm-agent');
    expect(other).to.include({ status: 403 });
    expect(isRefusal(other) ? other.reason : '').to.include(`only ${AGENT}`);
    // Same name in another namespace is another ServiceAccount.
    expect(callerNode(status('system:serviceaccount:evil:kwarm-agent'), 'kwarm-system', 'kwarm-agent')).to.include({ status: 403 });
    expect(callerNode(status(AGENT, {}), 'kwarm-system', 'kwarm-agent')).to.include({ status: 403 });
    expect(callerNode(status(AGENT, { [NODE_NAME_EXTRA]: ['a', 'b'] }), 'kwarm-system', 'kwarm-agent')).to.include({ status: 403 });
    expect(callerNode(status(AGENT, { [NODE_NAME_EXTRA]: [''] }), 'kwarm-system', 'kwarm-agent')).to.include({ status: 403 });
  });

  it('allows only names the node\'s NodeImageSet spec references', () => {
    const nis = { spec: { images: [{ image: 'a', pullSecrets: ['s1', 's2'] }, { image: 'b' }, { image: 'c', pullSecrets: ['s2', 's3'] }] } };
    const referenced = referencedSecrets(nis);
    expect([...referenced].sort()).to.deep.equal(['s1', 's2', 's3']);
    expect(refuseUnreferenced('n', ['s1', 's3'], referenced)).to.equal(undefined);
    expect(refuseUnreferenced('n', ['s1', 'x', 'y'], referenced)).to.deep.equal({ status: 403, reason: 'node n\'s NodeImageSet does not name x, y' });
    // No NodeImageSet (undefined) or no spec: nothing is referenced.
    expect(referencedSecrets(undefined).size).to.equal(0);
    expect(refuseUnreferenced('n', ['s1'], referencedSecrets({ spec: {} }))).to.include({ status: 403 });
  });

  it('serves pull-secret types only, with their data as stored (base64)', () => {
    const raw = { type: 'kubernetes.io/dockerconfigjson', metadata: { resourceVersion: '42' }, data: { '.dockerconfigjson': 'e30=', junk: 7 } };
    expect(servedSecret('s', raw)).to.deep.equal({ name: 's', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': 'e30=' }, resourceVersion: '42' });
    expect(servedSecret('s', { type: 'kubernetes.io/dockercfg', data: {} })).to.deep.equal({ name: 's', type: 'kubernetes.io/dockercfg', data: {} });
    for (const type of ['Opaque', 'kubernetes.io/tls', 'helm.sh/release.v1', undefined]) {
      expect(servedSecret('s', { type, data: { x: 'eA==' } }), String(type)).to.include({ status: 403 });
    }
  });
});
