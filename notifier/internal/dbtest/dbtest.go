// Package dbtest opens the databases the notifier's store tests run on:
// embedded SQLite always, and a fresh MariaDB/MySQL database when
// SECKILL_TEST_MYSQL_DSN names a server (under CI=true its absence fails).
package dbtest

import (
	"log/slog"
	"testing"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/notifier/schema"
	"github.com/flashsale/seckill/order/sqldb"
	"github.com/flashsale/seckill/testkit"
)

// Backend names a database and opens a migrated one for a test.
type Backend struct {
	Name string
	Open func(t testing.TB) *gorm.DB
}

// Backends are SQLite and MySQL, in that order.
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: func(t testing.TB) *gorm.DB { return open(t, "") }},
		{Name: "mysql", Open: func(t testing.TB) *gorm.DB { return open(t, testkit.MySQLDSN(t)) }},
	}
}

// Each runs f as a subtest per backend.
func Each(t *testing.T, f func(t *testing.T, db *gorm.DB)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

func open(t testing.TB, dsn string) *gorm.DB {
	t.Helper()
	db, err := sqldb.Open(t.Context(), sqldb.Config{
		DSN: dsn, DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	if err := schema.Migrate(t.Context(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}
