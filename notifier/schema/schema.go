// Package schema owns the notifier's tables (contacts, notifications) and
// applies their versioned SQL migrations. The notifier shares the order
// database but not its migration history: its versions are recorded in
// notifier_schema_migrations, so the two modules number their files
// independently and either can be deployed first.
package schema

import (
	"context"
	"embed"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order/sqldb"
)

//go:embed migrations/mysql/*.sql migrations/sqlite/*.sql
var migrationFS embed.FS

// migrations are the notifier's tables, recorded in their own history
// table and run by the order module's migration runner.
var migrations = sqldb.Migrations{
	FS: migrationFS, Dir: "migrations", Table: "notifier_schema_migrations", Lock: "seckill_notifier_migrate_",
}

// ErrMigrationChanged means a migration file differs from the one recorded
// as applied: the tables are not what this binary expects.
var ErrMigrationChanged = sqldb.ErrMigrationChanged

// Migrate applies the notifier's migrations that are not yet recorded. It is
// idempotent and safe when several processes start at once: on MySQL a named
// lock (GET_LOCK) serialises them, on SQLite one immediate transaction.
func Migrate(ctx context.Context, db *gorm.DB) error { return migrations.Apply(ctx, db) }
