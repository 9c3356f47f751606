// Driven by tests/clients/test_graphql_ws_retries_on_1013.py: the stock graphql-ws client with its
// DEFAULT retry rules (no shouldRetry, no retryAttempts), subscribed to dashboardKpis; prints one JSON
// line per value, connection change and error. Ends when its standard input closes.
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';

const [url, token] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: () => ({ authorization: `Bearer ${token}` }),
  on: {
    connected: () => out({ kind: 'connected' }),
    closed: (event) => out({ kind: 'closed', code: event?.code ?? null, reason: event?.reason ?? null }),
  },
});
const dispose = client.subscribe(
  { query: 'subscription { dashboardKpis { activeCampaigns } }' },
  {
    next: ({ data, errors }) => out({ kind: 'next', data, errors }),
    error: (error) => out({ kind: 'error', error: String(error?.code ?? error?.message ?? JSON.stringify(error)) }),
    complete: () => out({ kind: 'complete' }),
  },
);
process.stdin.resume();
process.stdin.on('end', async () => {
  dispose();
  await client.dispose();
  out({ kind: 'done' });
  process.exit(0);
});
