// control/client.ts: the API client xsctl uses (HTTP/1.1 JSON over the daemon's Unix socket). Never throws:
// a transport failure is a value, distinct from the daemon's refusals.

import { request } from 'node:http';

export const DEFAULT_SOCKET = '/run/xswitch/xswitchd.sock';

export type ApiResponse =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  /** The daemon could not be reached (no socket, refused, permission, timeout). */
  | { readonly ok: false; readonly error: string };

export interface ClientOptions {
  readonly socket: string;
  readonly timeoutMs?: number;
}

export class ApiClient {
  constructor(private readonly opts: ClientOptions) {}

  get socket(): string {
    return this.opts.socket;
  }

  call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return this.raw(method, path, text, text === undefined ? headers : { 'content-type': 'application/json', ...headers });
  }

  /** Send `text` as the body as is (tests use it for malformed JSON). */
  raw(method: string, path: string, text?: string | Buffer, headers: Record<string, string> = {}): Promise<ApiResponse> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: ApiResponse): void => {
        if (!done) {
          done = true;
          resolve(r);
        }
      };
      const req = request({
        socketPath: this.opts.socket,
        agent: false,
        method,
        path,
        headers: { ...headers, ...(text === undefined ? {} : { 'content-length': String(Buffer.byteLength(text)) }) },
        timeout: this.opts.timeoutMs ?? 60_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const s = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = s;
          try {
            parsed = s === '' ? null : JSON.parse(s) as unknown;
          } catch {
            // not JSON: keep the text, the caller shows it
          }
          finish({ ok: true, status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (e) => finish({ ok: false, error: `connection to ${this.opts.socket} broke: ${e.message}` }));
      });
      req.on('timeout', () => {
        req.destroy();
        finish({ ok: false, error: `xswitchd on ${this.opts.socket} did not answer in time` });
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'ENOENT' ? 'no such socket (is xswitchd running? start it with: xswitchd)'
          : e.code === 'ECONNREFUSED' ? 'connection refused (xswitchd is not running)'
          : e.code === 'EACCES' ? 'permission denied (the socket is root-only: run as root)'
          : e.message;
        finish({ ok: false, error: `cannot reach xswitchd on ${this.opts.socket}: ${why}` });
      });
      if (text !== undefined) req.write(text);
      req.end();
    });
  }
}
