// The two channels of a Campaign Pulse client: GraphQL over HTTP (fetch) for reads, and
// graphql-ws for live subscriptions, configured as docs/api.md "Surviving restarts" recommends.
import { createClient, type Client } from 'graphql-ws';

export class ApiError extends Error {
  constructor(message: string, public code?: string, public status?: number) {
    super(message);
  }
}

export async function query<T = any>(apiUrl: string, token: string, q: string, variables: object = {}): Promise<T> {
  const res = await fetch(`${apiUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: q, variables }),
  });
  const body = await res.json().catch(() => null);
  const error = body?.errors?.[0];
  if (!res.ok || error) {
    throw new ApiError(error?.message ?? `HTTP ${res.status}`, error?.extensions?.code, res.status);
  }
  return body.data as T;
}

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface LiveClient {
  client: Client;
  /** Subscribe; `resumeKey` makes the stream resume after its last cursor on reconnect. */
  subscribe<T = any>(q: string, variables: object, onData: (data: T) => void,
                     options?: { resumeKey?: string; cursor?: (data: T) => string | undefined;
                                 onError?: (e: unknown) => void }): () => void;
  dispose(): void;
}

export function liveClient(apiUrl: string, token: string, onState: (s: ConnectionState) => void,
                           onFatal: (e: unknown) => void, onReconnected: () => void = () => {}): LiveClient {
  const resume: Record<string, string> = {};  // last cursor per stream, sent on every (re)connect
  let everConnected = false;
  const client = createClient({
    url: apiUrl.replace(/^http/, 'ws') + '/graphql',
    connectionParams: () => ({ authorization: `Bearer ${token}`, resume: { ...resume } }),
    retryAttempts: Infinity,
    shouldRetry: (e: any) => {
      if ([4401, 4403].includes(e?.code)) { onFatal(e); return false; }
      return true;  // 1012 restart, 1006 drop, refused connection while the server restarts, 4008
    },
    retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(250 * 2 ** retries, 2000) + Math.random() * 500)),
    on: {
      connecting: () => onState(everConnected ? 'reconnecting' : 'connecting'),
      connected: () => {
        const again = everConnected;
        everConnected = true;
        onState('live');
        if (again) onReconnected();  // KPI subscriptions send their current value again; lists may refetch
      },
      closed: () => onState(everConnected ? 'reconnecting' : 'offline'),
    },
  });
  return {
    client,
    subscribe(q, variables, onData, options = {}) {
      return client.subscribe({ query: q, variables }, {
        next: ({ data, errors }) => {
          if (errors?.length) return options.onError?.(errors);
          if (!data) return;
          const cursor = options.cursor?.(data as any);
          if (options.resumeKey && cursor) resume[options.resumeKey] = cursor;
          onData(data as any);
        },
        error: (e) => options.onError?.(e),
        complete: () => {},
      });
    },
    dispose() {
      client.dispose();
      onState('offline');
    },
  };
}
