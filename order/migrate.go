package order

import (
	"context"
	"embed"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/order/sqldb"
)

// migrationFS holds the schema, one directory per dialect, so that the
// binary carries exactly the schema it was built and tested with.
//
//go:embed migrations/mysql/*.sql migrations/sqlite/*.sql
var migrationFS embed.FS

// migrations is this package's schema, with its own history table.
var migrations = sqldb.Migrations{FS: migrationFS, Dir: "migrations", Table: "schema_migrations", Lock: "seckill_migrate_"}

// Migrate applies the order schema (see sqldb.Migrations.Apply).
func Migrate(ctx context.Context, db *gorm.DB) error { return migrations.Apply(ctx, db) }
