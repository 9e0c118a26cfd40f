package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"parley/ratelimit"
)

type sendLimitRow struct {
	TATus         int64   `db:"tat_us"`
	PausedUntilUS int64   `db:"paused_until_us"`
	PauseReason   string  `db:"pause_reason"`
	Factor        float64 `db:"factor"`
	FactorUntilUS int64   `db:"factor_until_us"`
}

func us(t time.Time) int64 { return t.UnixMicro() }

// ReserveSend counts one Send API call of the page's lane at now and says
// how long to wait before making it (0: at once). While Meta throttles the
// page, nothing is counted: wait is the rest of the pause and reason says
// why. Every worker shares the limiter. Each reservation is one short
// transaction that creates the page lane's row if need be and holds it
// (FOR UPDATE on PostgreSQL; on SQLite every transaction takes the write
// lock at BEGIN), so concurrent workers queue for it instead of retrying:
// a compare-and-swap loop with a bounded number of attempts failed sends
// under contention.
func (s *Store) ReserveSend(ctx context.Context, pageRef, lane string, now time.Time) (wait time.Duration, reason string, err error) {
	defer wrap(&err, "store.ReserveSend(%s, %s)", pageRef, lane)
	limits, ok := ratelimit.Meta[lane]
	if !ok {
		return 0, "", invalidf("unknown send lane %q", lane)
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = ` FOR UPDATE`
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := ensureSendLimit(ctx, tx, pageRef, lane); err != nil {
			return err
		}
		var r sendLimitRow
		if err := get(ctx, tx, &r, `SELECT tat_us, paused_until_us, pause_reason, factor, factor_until_us FROM send_limits
			WHERE page_ref = ? AND lane = ?`+lock, pageRef, lane); err != nil {
			return err
		}
		if until := time.UnixMicro(r.PausedUntilUS); until.After(now) {
			wait, reason = until.Sub(now), r.PauseReason
			return nil
		}
		l := limits
		if r.FactorUntilUS > us(now) {
			l = l.Scaled(r.Factor)
		}
		var tat time.Time
		if r.TATus > 0 {
			tat = time.UnixMicro(r.TATus)
		}
		next, w := ratelimit.Reserve(tat, now, l)
		if _, err := exec(ctx, tx, `UPDATE send_limits SET tat_us = ? WHERE page_ref = ? AND lane = ?`,
			us(next), pageRef, lane); err != nil {
			return err
		}
		wait = w
		if w > 0 {
			reason = fmt.Sprintf("the page's send rate (%.0f a second for %s)", l.Rate, lane)
		}
		return nil
	})
	if err != nil {
		return 0, "", err
	}
	return wait, reason, nil
}

// PauseSends stops every lane of the page's sends until until (Meta
// throttles it), with the reason; a longer pause already set stays.
func (s *Store) PauseSends(ctx context.Context, pageRef string, until time.Time, reason string) (err error) {
	defer wrap(&err, "store.PauseSends(%s)", pageRef)
	for lane := range ratelimit.Meta {
		if err := ensureSendLimit(ctx, s.db, pageRef, lane); err != nil {
			return err
		}
		if _, err := exec(ctx, s.db, `UPDATE send_limits SET paused_until_us = ?, pause_reason = ?
			WHERE page_ref = ? AND lane = ? AND paused_until_us < ?`, us(until), reason, pageRef, lane, us(until)); err != nil {
			return err
		}
	}
	return nil
}

// SlowSends uses only factor of the page's rates until until (Meta says
// its budget is nearly spent); factor 1 restores them.
func (s *Store) SlowSends(ctx context.Context, pageRef string, factor float64, until time.Time) (err error) {
	defer wrap(&err, "store.SlowSends(%s)", pageRef)
	for lane := range ratelimit.Meta {
		if err := ensureSendLimit(ctx, s.db, pageRef, lane); err != nil {
			return err
		}
		if _, err := exec(ctx, s.db, `UPDATE send_limits SET factor = ?, factor_until_us = ? WHERE page_ref = ? AND lane = ?`,
			factor, us(until), pageRef, lane); err != nil {
			return err
		}
	}
	return nil
}

// ensureSendLimit creates the page's lane limiter if it has none yet.
func ensureSendLimit(ctx context.Context, q querier, pageRef, lane string) error {
	_, err := exec(ctx, q, `INSERT INTO send_limits (page_ref, lane, tat_us) VALUES (?, ?, 0) ON CONFLICT (page_ref, lane) DO NOTHING`,
		pageRef, lane)
	return err
}
