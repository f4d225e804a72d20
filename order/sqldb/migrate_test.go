package sqldb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"testing/fstest"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/testkit"
)

// forEachBackend runs fn on a fresh database of each dialect. The mysql
// subtest is skipped without SECKILL_TEST_MYSQL_DSN.
func forEachBackend(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, open(t, Config{DataDir: t.TempDir()})) })
	t.Run("mysql", func(t *testing.T) { fn(t, open(t, Config{DSN: testkit.MySQLDSN(t)})) })
}

// files is one migration set, the same SQL for both dialects.
func files(sqls map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, sql := range sqls {
		for _, d := range []string{"mysql", "sqlite"} {
			fsys["m/"+d+"/"+name] = &fstest.MapFile{Data: []byte(sql)}
		}
	}
	return fsys
}

func checksum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func history(t *testing.T, db *gorm.DB, table string) []historyRow {
	t.Helper()
	var rows []historyRow
	if err := db.Table(table).Order("version").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestMigrationsApply(t *testing.T) {
	const (
		first  = "-- a comment line\nCREATE TABLE a (id INTEGER NOT NULL PRIMARY KEY);\nINSERT INTO a (id) VALUES (1);\n"
		second = "CREATE TABLE b (id INTEGER NOT NULL PRIMARY KEY);\n"
	)
	forEachBackend(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		one := Migrations{FS: files(map[string]string{"0001_a.sql": first}), Dir: "m", Table: "hist_one", Lock: "test_one_"}
		for range 2 { // the second run changes nothing
			if err := one.Apply(ctx, db); err != nil {
				t.Fatalf("Apply: %v", err)
			}
		}
		var n int64
		if err := db.Table("a").Count(&n).Error; err != nil || n != 1 {
			t.Fatalf("table a has %d rows (%v), want the 1 inserted once", n, err)
		}

		// A new file is applied after the recorded ones.
		one.FS = files(map[string]string{"0001_a.sql": first, "0002_b.sql": second})
		if err := one.Apply(ctx, db); err != nil {
			t.Fatalf("Apply with a new file: %v", err)
		}
		got := history(t, db, "hist_one")
		want := []historyRow{{Version: "0001", Name: "0001_a.sql", Checksum: checksum(first)}, {Version: "0002", Name: "0002_b.sql", Checksum: checksum(second)}}
		if !slices.EqualFunc(got, want, func(g, w historyRow) bool {
			return g.Version == w.Version && g.Name == w.Name && g.Checksum == w.Checksum
		}) {
			t.Errorf("hist_one = %+v, want %+v", got, want)
		}
		if !db.Migrator().HasTable("b") {
			t.Error("table b missing")
		}

		// Another set on the same database numbers its files on its own.
		other := Migrations{FS: files(map[string]string{"0001_c.sql": "CREATE TABLE c (id INTEGER NOT NULL PRIMARY KEY);\n"}), Dir: "m", Table: "hist_other", Lock: "test_other_"}
		if err := other.Apply(ctx, db); err != nil {
			t.Fatalf("Apply of a second set: %v", err)
		}
		if !db.Migrator().HasTable("c") || len(history(t, db, "hist_other")) != 1 {
			t.Error("the second set's 0001 was not applied beside the first set's")
		}

		// An applied file that changed stops the start.
		one.FS = files(map[string]string{"0001_a.sql": first + "-- edited\n", "0002_b.sql": second})
		if err := one.Apply(ctx, db); !errors.Is(err, ErrMigrationChanged) {
			t.Errorf("Apply with an edited applied file = %v, want ErrMigrationChanged", err)
		}
	})
}

func TestMigrationsApplyRejects(t *testing.T) {
	db := open(t, Config{DataDir: t.TempDir()})
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"file name without a version", files(map[string]string{"init.sql": "SELECT 1;\n"})},
		{"no directory for the dialect", fstest.MapFS{"m/mysql/0001_a.sql": &fstest.MapFile{Data: []byte("SELECT 1;\n")}}},
		{"failing statement", files(map[string]string{"0001_bad.sql": "CREATE TABLE;\n"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := Migrations{FS: tt.fsys, Dir: "m", Table: "hist_rejects", Lock: "test_rejects_"}
			if err := ms.Apply(context.Background(), db); err == nil {
				t.Error("Apply succeeded, want an error")
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"one per line end", "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);\n", []string{"CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"}},
		{"comments and blank lines dropped", "-- intro\n\nDROP TABLE a;\n  -- indented\n", []string{"DROP TABLE a"}},
		{"statement over lines", "CREATE TABLE a (\n    x INT\n);\n", []string{"CREATE TABLE a (\n    x INT\n)"}},
		{"last statement without a semicolon", "DROP TABLE a;\nDROP TABLE b", []string{"DROP TABLE a", "DROP TABLE b"}},
		{"semicolon inside a line does not split", "INSERT INTO a VALUES ('x;y');\n", []string{"INSERT INTO a VALUES ('x;y')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := splitStatements(tt.sql); !slices.Equal(got, tt.want) {
				t.Errorf("splitStatements(%q) = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}
