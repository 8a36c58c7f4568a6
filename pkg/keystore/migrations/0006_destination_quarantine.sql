-- A key's own destination and series budget, and its quarantine.
-- bucket: the InfluxDB bucket (1.x: db or db/rp) its points go to; '' is
-- the gateway's --influx-bucket. max_series: the distinct series it may
-- write per hour; NULL is the gateway's --max-series-per-key.
-- quarantined_at: when the gateway stopped taking its points because
-- InfluxDB kept refusing them (unix nanoseconds), NULL while it is not;
-- quarantine_reason says why.
ALTER TABLE api_keys ADD COLUMN bucket TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN max_series INTEGER;
ALTER TABLE api_keys ADD COLUMN quarantined_at INTEGER;
ALTER TABLE api_keys ADD COLUMN quarantine_reason TEXT NOT NULL DEFAULT '';
