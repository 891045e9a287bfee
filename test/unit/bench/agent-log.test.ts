import { expect } from 'chai';
import { pulledAt } from '../../../bench/agent-log.ts';

const T = (s: string): string => `2026-11-21T23:42:${s}Z`;

describe('bench/agent-log', () => {
  const entries = [
    { level: 'info', message: 'pulling image', image: 'app:v1', timestamp: T('20.000') },
    { level: 'info', message: 'image pulled', image: 'other:v1', timestamp: T('20.500') },
    { level: 'info', message: 'image pulled', image: 'app:v1', timestamp: T('21.250') },
    { level: 'info', message: 'image pulled', image: 'app:v1', timestamp: T('25.000') },
  ];

  it('gives the time of the first "image pulled" entry for the image', () => {
    expect(pulledAt(entries, 'app:v1', 0)).to.equal(Date.parse(T('21.250')));
    expect(pulledAt(entries, 'other:v1', 0)).to.equal(Date.parse(T('20.500')));
  });

  it('skips entries before `since`, keeping one exactly at it', () => {
    expect(pulledAt(entries, 'app:v1', Date.parse(T('21.251')))).to.equal(Date.parse(T('25.000')));
    expect(pulledAt(entries, 'app:v1', Date.parse(T('25.000')))).to.equal(Date.parse(T('25.000')));
    expect(pulledAt(entries, 'app:v1', Date.parse(T('25.001')))).to.equal(undefined);
  });

  it('ignores other messages, other images and entries without a usable timestamp', () => {
    expect(pulledAt([
      { message: 'pulling image', image: 'x', timestamp: T('20.000') },
      { message: 'image pulled', image: 'x', timestamp: 12345 },
      { message: 'image pulled', image: 'x', timestamp: 'not a time' },
      { message: 'image pulled', image: 'y', timestamp: T('21.000') },
      { message: 'image pulled', image: 'x', timestamp: T('22.000') },
    ], 'x', 0)).to.equal(Date.parse(T('22.000')));
    expect(pulledAt([], 'x', 0)).to.equal(undefined);
  });
});
