// Package schema owns the notifier's tables (contacts, notifications) and
// applies their versioned SQL migrations. The notifier shares the order
// database but not its migration history: its versions are recorded in
// notifier_schema_migrations, so the two modules number their files
// independently and either can be deployed first.
package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

//go:embed migrations/mysql/*.sql migrations/sqlite/*.sql
var migrationFS embed.FS

// historyTable records the applied notifier migrations.
const historyTable = "notifier_schema_migrations"

// lockTimeout bounds how long a starting process waits for another one that
// is migrating the same MySQL database.
const lockTimeout = 60 * time.Second

// ErrMigrationChanged means a migration file differs from the one recorded
// as applied: the tables are not what this binary expects.
var ErrMigrationChanged = errors.New("notifier: applied migration was changed")

type migration struct {
	version, name, sql, checksum string
}

type applied struct {
	Version   string `gorm:"primaryKey;size:32"`
	Name      string `gorm:"size:200;not null"`
	Checksum  string `gorm:"size:64;not null"`
	AppliedAt time.Time
}

func (applied) TableName() string { return historyTable }

// Migrate applies the notifier's migrations that are not yet recorded. It is
// idempotent and safe when several processes start at once: on MySQL a named
// lock (GET_LOCK) serialises them, on SQLite one immediate transaction.
func Migrate(ctx context.Context, db *gorm.DB) error {
	dialect := db.Dialector.Name()
	migs, err := load(dialect)
	if err != nil {
		return fmt.Errorf("notifier migrations (%s): %w", dialect, err)
	}
	switch dialect {
	case "mysql":
		err = db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
			conn = conn.Session(&gorm.Session{})
			return withLock(ctx, conn, func() error { return apply(conn, dialect, migs) })
		})
	default:
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return apply(tx, dialect, migs) })
	}
	if err != nil {
		return fmt.Errorf("notifier migrations (%s): %w", dialect, err)
	}
	return nil
}

func load(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, fmt.Errorf("unsupported dialect %q", dialect)
	}
	var migs []migration
	for _, e := range entries {
		version, _, ok := strings.Cut(e.Name(), "_")
		if !ok || version == "" {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		migs = append(migs, migration{version: version, name: e.Name(), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

func withLock(ctx context.Context, conn *gorm.DB, fn func() error) error {
	const name = "LEFT(CONCAT('seckill_notifier_migrate_', DATABASE()), 64)"
	var got *int
	if err := conn.Raw("SELECT GET_LOCK("+name+", ?)", int(lockTimeout.Seconds())).Scan(&got).Error; err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("take migration lock: another process held it for %s", lockTimeout)
	}
	defer conn.WithContext(context.WithoutCancel(ctx)).Exec("SELECT RELEASE_LOCK(" + name + ")")
	return fn()
}

func apply(db *gorm.DB, dialect string, migs []migration) error {
	create := "CREATE TABLE IF NOT EXISTS " + historyTable + ` (
    version    VARCHAR(32)  NOT NULL PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    checksum   CHAR(64)     NOT NULL,
    applied_at DATETIME NOT NULL
)`
	if dialect == "mysql" {
		create += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	if err := db.Exec(create).Error; err != nil {
		return fmt.Errorf("create %s: %w", historyTable, err)
	}
	var done []applied
	if err := db.Find(&done).Error; err != nil {
		return fmt.Errorf("read %s: %w", historyTable, err)
	}
	byVersion := map[string]applied{}
	for _, a := range done {
		byVersion[a.Version] = a
	}
	for _, m := range migs {
		if a, ok := byVersion[m.version]; ok {
			if a.Checksum != m.checksum {
				return fmt.Errorf("%s: %w (recorded checksum %s, file %s)", m.name, ErrMigrationChanged, a.Checksum, m.checksum)
			}
			continue
		}
		for i, stmt := range statements(m.sql) {
			if err := db.Exec(stmt).Error; err != nil {
				return fmt.Errorf("%s statement %d: %w", m.name, i+1, err)
			}
		}
		rec := applied{Version: m.version, Name: m.name, Checksum: m.checksum, AppliedAt: time.Now().UTC().Truncate(time.Second)}
		if err := db.Create(&rec).Error; err != nil {
			return fmt.Errorf("record %s: %w", m.name, err)
		}
	}
	return nil
}

// statements cuts a migration at semicolons that end a line and drops "--"
// comment lines, so migrations run without the driver's multiStatements.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(sql) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
