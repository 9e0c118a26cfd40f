package store

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// migrateChildEnv makes the test binary a process that opens and migrates
// the SQLite file it names, as `parley api` or `parley worker` does.
const migrateChildEnv = "PARLEY_TEST_MIGRATE_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(migrateChildEnv); path != "" {
		ctx := context.Background()
		s, err := Open(ctx, "sqlite:"+path, nil)
		if err == nil {
			err = s.Migrate(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Issue 6, defect 18: processes started at the same moment on a new SQLite
// database all migrate it without "table already exists".
func TestConcurrentProcessesMigrateSQLiteOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for round := 0; round < 3; round++ {
		path := filepath.Join(t.TempDir(), "parley.db")
		const procs = 4
		var wg sync.WaitGroup
		errs := make([]string, procs)
		for i := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := osexec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), migrateChildEnv+"="+path)
				if out, err := cmd.CombinedOutput(); err != nil {
					errs[i] = fmt.Sprintf("%v: %s", err, lastLine(out))
				}
			}()
		}
		wg.Wait()
		for i, e := range errs {
			if e != "" {
				t.Errorf("round %d, process %d: %s", round, i, e)
			}
		}
		s, err := Open(t.Context(), "sqlite:"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var applied int
		if err := s.db.GetContext(t.Context(), &applied, `SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if entries, err := os.ReadDir("../migrations"); err == nil {
			want := 0
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".sql") {
					want++
				}
			}
			if applied != want {
				t.Errorf("round %d: %d migrations recorded, want %d, once each", round, applied, want)
			}
		}
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
