-- Bench-only additions for PostGraphile (applied by `python -m bench.peer` to its own database,
-- never part of Pulse's migrations). Read (c) asks for each campaign's sent and delivered counts;
-- Pulse answers them from its rollup table send_counter (sum over channel x center x day rows),
-- so the peer gets the same figures from the same rows: two computed columns (PostGraphile 4 exposes
-- a STABLE function `campaign_<name>(campaign)` as the field `<name>` of Campaign and calls it
-- inside its one SQL statement). Same answer, same source, no COUNT(*) over send.
CREATE OR REPLACE FUNCTION campaign_sent_count(c campaign) RETURNS integer
    LANGUAGE sql STABLE STRICT AS
$$ SELECT COALESCE(SUM(sent), 0)::integer FROM send_counter WHERE campaign_id = c.id $$;

CREATE OR REPLACE FUNCTION campaign_delivered_count(c campaign) RETURNS integer
    LANGUAGE sql STABLE STRICT AS
$$ SELECT COALESCE(SUM(delivered), 0)::integer FROM send_counter WHERE campaign_id = c.id $$;
