-- One row per run of any pipeline function: what the dashboard's runs page and a
-- user's SQL read to see what happened without reading logs.
CREATE TABLE pipeline_runs (
    run_id      uuid        PRIMARY KEY,
    function    text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text        NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'succeeded', 'failed')),
    rows_in     bigint,
    rows_out    bigint,
    error       text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    CHECK ((status = 'running') = (finished_at IS NULL))
);

CREATE INDEX pipeline_runs_function_started ON pipeline_runs (function, started_at DESC);
