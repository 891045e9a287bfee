// Structured logs for both binaries: JSON lines (default) or human-readable text, on stderr.
import winston from 'winston';

export type LogFormat = 'json' | 'text';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

export function createLogger(opts: { level: LogLevel; format: LogFormat; component: string }): winston.Logger {
  const format = opts.format === 'json'
    ? winston.format.combine(winston.format.timestamp(), winston.format.json())
    : winston.format.combine(
      winston.format.timestamp(),
      winston.format.printf((info) => {
        const { timestamp, level, message, component: _c, ...rest } = info;
        const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
        return `${String(timestamp)} ${level.toUpperCase()} ${String(message)}${extra}`;
      }),
    );
  return winston.createLogger({
    level: opts.level,
    defaultMeta: { component: opts.component },
    format,
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  });
}
