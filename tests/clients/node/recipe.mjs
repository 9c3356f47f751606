// The documented client recipe (docs/api.md, "Surviving restarts"): a stock graphql-ws client
// that reconnects through server restarts and resumes sendStatusChanged where it left off.
import { createClient } from 'graphql-ws';

export function createPulseClient({ url, token, webSocketImpl, on }) {
  // Last cursor received per stream (resume key = the subscription's campaignId, or its resumeKey).
  const resume = {};
  const client = createClient({
    url,
    webSocketImpl,
    on,
    // Called on every (re)connect: the connection_init payload carries the cursors to resume from.
    connectionParams: () => ({ authorization: `Bearer ${token}`, resume: { ...resume } }),
    retryAttempts: Infinity,
    // Retry on restarts (1012), dropped connections (1006), refused connections (ECONNREFUSED
    // during the restart: an error event, not a close event) and slow-consumer closes (4008);
    // stop when the token is refused or revoked.
    shouldRetry: (errOrCloseEvent) => ![4401, 4403].includes(errOrCloseEvent?.code),
    // Capped backoff with jitter: 0.25 s, 0.5 s, 1 s, 2 s, then every 2–2.5 s.
    retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(250 * 2 ** retries, 2000) + Math.random() * 500)),
  });
  return {
    client,
    // Subscribe to a campaign's send stream; `onEvent` sees each event exactly once.
    sendStatusChanged(campaignId, selection, onEvent, onError = () => {}) {
      return client.subscribe(
        { query: `subscription($c: ID!) { sendStatusChanged(campaignId: $c) { cursor ${selection} } }`,
          variables: { c: campaignId } },
        {
          next: ({ data, errors }) => {
            if (errors) return onError(errors);
            resume[campaignId] = data.sendStatusChanged.cursor;  // before handing it on
            onEvent(data.sendStatusChanged);
          },
          error: onError,
          complete: () => {},
        },
      );
    },
  };
}
