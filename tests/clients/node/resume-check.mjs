// Driven by tests/clients/test_graphql_ws_resume.py: subscribes to sendStatusChanged with the stock
// graphql-ws client (the documented recipe) and prints one JSON line per event and per connection
// change. Ends when its standard input closes.
import WebSocket from 'ws';
import { createPulseClient } from './recipe.mjs';

const [url, token, campaignId] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const pulse = createPulseClient({
  url, token, webSocketImpl: WebSocket,
  on: {
    connected: () => out({ kind: 'connected' }),
    closed: (event) => out({ kind: 'closed', code: event?.code ?? null }),
  },
});
const dispose = pulse.sendStatusChanged(
  campaignId, 'status send { externalId }',
  (event) => out({ kind: 'event', cursor: event.cursor, status: event.status, externalId: event.send.externalId }),
  (error) => out({ kind: 'error', error: String(error?.message ?? JSON.stringify(error)) }),
);
process.stdin.resume();
process.stdin.on('end', async () => {
  dispose();
  await pulse.client.dispose();
  out({ kind: 'done' });
  process.exit(0);
});
