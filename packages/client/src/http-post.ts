/**
 * How the SDK POSTs a JSON body and reads the answer as text. In Node (and runtimes with its
 * `node:http`), when no `fetch` was given: node:http(s) with a keep-alive agent. Node's built-in
 * fetch (undici, web streams, a Request, Headers and a performance entry per call) cost the client
 * 2-3× the CPU of a plain node:http request per query (bench/sdk.mjs); the answer is the same bytes.
 * Elsewhere (browsers), or when the caller passed its own `fetch`: fetch.
 */

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

/** POSTs `body` to `url` with `headers`; rejects on network failure or abort (the caller maps both). */
export type HttpPost = (url: string, headers: Record<string, string>, body: string, signal?: AbortSignal) => Promise<HttpAnswer>;

export function fetchPost(fetchImpl: typeof fetch): HttpPost {
  return async (url, headers, body, signal) => {
    const res = await fetchImpl(url, { method: 'POST', headers, body, ...(signal !== undefined ? { signal } : {}) });
    return { status: res.status, text: await res.text() };
  };
}

type NodeHttp = typeof import('node:http');

interface NodeModules {
  readonly http: NodeHttp;
  readonly https: typeof import('node:https');
}

let nodeModules: Promise<NodeModules | null> | undefined;

/** node:http and node:https, or null where there are none (a browser). Loaded once, on first use. */
function loadNode(): Promise<NodeModules | null> {
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  nodeModules ??= isNode
    ? Promise.all([import('node:http'), import('node:https')]).then(([http, https]) => ({ http, https }), () => null)
    : Promise.resolve(null);
  return nodeModules;
}

/**
 * The transport for a client without its own `fetch`: node:http(s) with one keep-alive agent per
 * client where node:http exists, else the global fetch. Idle sockets do not keep the process alive
 * (the agent unrefs them) and are closed before the server's announced keep-alive timeout.
 */
export function defaultPost(): HttpPost {
  let chosen: Promise<HttpPost> | undefined;
  const choose = async (): Promise<HttpPost> => {
    const node = await loadNode();
    return node === null ? fetchPost(globalThis.fetch.bind(globalThis)) : nodePost(node);
  };
  return (url, headers, body, signal) => (chosen ??= choose()).then((post) => post(url, headers, body, signal));
}

function nodePost({ http, https }: NodeModules): HttpPost {
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  return (url, headers, body, signal) => new Promise<HttpAnswer>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new Error('aborted'));
      return;
    }
    const secure = url.startsWith('https:');
    const request = (secure ? https.request : http.request)(url, {
      method: 'POST', agent: secure ? agents.https : agents.http,
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
      // The connection closed before the whole answer came.
      res.on('close', () => { if (!res.complete) fail(new Error('the connection closed before the response ended')); });
    });
    function fail(error: Error): void {
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    }
    function onAbort(): void {
      request.destroy(new Error('aborted'));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', fail);
    request.end(body);
  });
}
