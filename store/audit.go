package store

import (
	"context"
	"fmt"
	"strings"
)

// EachCell calls fn with every non-null cell of every table, as text: the
// privacy audit (what is left of an erased customer? is a secret stored in
// clear?) reads the whole database, not the columns someone remembered.
func (s *Store) EachCell(ctx context.Context, fn func(table, column, value string)) (err error) {
	defer wrap(&err, "store.EachCell")
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if s.dialect == DialectPostgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	var tables []string
	if err := list(ctx, s.db, &tables, q); err != nil {
		return err
	}
	for _, t := range tables {
		rows, err := s.db.QueryxContext(ctx, fmt.Sprintf(`SELECT * FROM %q`, t))
		if err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
		cols, err := rows.Columns()
		if err != nil {
			rows.Close()
			return err
		}
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				rows.Close()
				return fmt.Errorf("table %s: %w", t, err)
			}
			for i, v := range vals {
				switch v := v.(type) {
				case nil:
				case []byte:
					fn(t, cols[i], string(v))
				default:
					fn(t, cols[i], strings.TrimSpace(fmt.Sprint(v)))
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
	}
	return nil
}
