-- +goose Up

-- One Send API limiter per page and lane, shared by every worker (issue 10):
-- the generic cell rate algorithm's theoretical arrival time (microseconds
-- since the epoch), a pause while Meta throttles the page, and a slow-down
-- while Meta says the page's budget is nearly spent.
CREATE TABLE send_limits (
    page_ref          TEXT NOT NULL,
    lane              TEXT NOT NULL,           -- text, media
    tat_us            BIGINT NOT NULL,
    paused_until_us   BIGINT NOT NULL DEFAULT 0,
    pause_reason      TEXT NOT NULL DEFAULT '',
    factor            DOUBLE PRECISION NOT NULL DEFAULT 1,
    factor_until_us   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (page_ref, lane)
);

-- +goose Down
DROP TABLE send_limits;
