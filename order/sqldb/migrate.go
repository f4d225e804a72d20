package sqldb

import (
	"context"
	"crypto/sha256"
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

// migrationLockTimeout bounds how long a starting process waits for another
// one that is migrating the same MySQL database.
const migrationLockTimeout = 60 * time.Second

// ErrMigrationChanged is returned when a migration file differs from the one
// recorded as applied: the schema in the database is not the one the binary
// expects, and guessing would be worse than stopping.
var ErrMigrationChanged = errors.New("applied migration was changed")

type migration struct {
	version  string // "0001"
	name     string // "0001_init.sql"
	sql      string
	checksum string // hex SHA-256 of the file
}

// historyRow is a row of a history table.
type historyRow struct {
	Version   string `gorm:"primaryKey;size:32"`
	Name      string `gorm:"size:200;not null"`
	Checksum  string `gorm:"size:64;not null"`
	AppliedAt time.Time
}

// Migrations is a set of versioned SQL migration files, one directory per
// dialect ("mysql", "sqlite") under Dir in FS, named NNNN_description.sql,
// with its own history table, so that modules sharing one database (order,
// notifier) number their files independently. An applied file is
// checksummed: change the schema with a new file, never by editing one.
type Migrations struct {
	FS    fs.FS
	Dir   string // holds mysql/ and sqlite/
	Table string // history table
	Lock  string // MySQL named-lock prefix, unique per set
}

// Apply applies the migrations of db's dialect that are not yet recorded in
// the history table, in file-name order. It is idempotent and safe when
// several processes start at once: on MySQL, where DDL commits implicitly,
// a named lock (GET_LOCK) serialises them; on SQLite, where DDL is
// transactional, one immediate transaction does. A recorded migration
// whose file changed is ErrMigrationChanged.
func (ms Migrations) Apply(ctx context.Context, db *gorm.DB) error {
	dialect := db.Dialector.Name()
	migs, err := ms.load(dialect)
	if err != nil {
		return fmt.Errorf("migrate %s (%s): %w", dialect, ms.Table, err)
	}
	switch dialect {
	case "mysql":
		err = db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
			// A fresh session per statement: the handle Connection
			// passes would otherwise carry one statement into the next.
			conn = conn.Session(&gorm.Session{})
			return ms.withMySQLLock(ctx, conn, func() error { return ms.apply(conn, dialect, migs) })
		})
	case "sqlite":
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return ms.apply(tx, dialect, migs)
		})
	}
	if err != nil {
		return fmt.Errorf("migrate %s (%s): %w", dialect, ms.Table, err)
	}
	return nil
}

func (ms Migrations) load(dialect string) ([]migration, error) {
	dir := path.Join(ms.Dir, dialect)
	entries, err := fs.ReadDir(ms.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("unsupported dialect %q: %w", dialect, err)
	}
	var migs []migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		version, _, ok := strings.Cut(e.Name(), "_")
		if !ok || version == "" {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(ms.FS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		migs = append(migs, migration{version: version, name: e.Name(), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(migs, func(i, j int) bool { return migs[i].version < migs[j].version })
	return migs, nil
}

// withMySQLLock runs fn while holding a named lock scoped to the current
// database, on the single connection conn (named locks belong to a session).
func (ms Migrations) withMySQLLock(ctx context.Context, conn *gorm.DB, fn func() error) error {
	name := "LEFT(CONCAT('" + ms.Lock + "', DATABASE()), 64)"
	var got *int
	if err := conn.Raw("SELECT GET_LOCK("+name+", ?)", int(migrationLockTimeout.Seconds())).Scan(&got).Error; err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if got == nil || *got != 1 {
		return fmt.Errorf("take migration lock: another process held it for %s", migrationLockTimeout)
	}
	defer conn.WithContext(context.WithoutCancel(ctx)).Exec("SELECT RELEASE_LOCK(" + name + ")")
	return fn()
}

func (ms Migrations) apply(db *gorm.DB, dialect string, migs []migration) error {
	create := "CREATE TABLE IF NOT EXISTS " + ms.Table + ` (
    version    VARCHAR(32)  NOT NULL PRIMARY KEY,
    name       VARCHAR(200) NOT NULL,
    checksum   CHAR(64)     NOT NULL,
    applied_at DATETIME NOT NULL
)`
	if dialect == "mysql" {
		create += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	if err := db.Exec(create).Error; err != nil {
		return fmt.Errorf("create %s: %w", ms.Table, err)
	}
	var applied []historyRow
	if err := db.Table(ms.Table).Find(&applied).Error; err != nil {
		return fmt.Errorf("read %s: %w", ms.Table, err)
	}
	done := make(map[string]historyRow, len(applied))
	for _, a := range applied {
		done[a.Version] = a
	}
	for _, m := range migs {
		if a, ok := done[m.version]; ok {
			if a.Checksum != m.checksum {
				return fmt.Errorf("%s: %w (recorded checksum %s, file %s)", m.name, ErrMigrationChanged, a.Checksum, m.checksum)
			}
			continue
		}
		for i, stmt := range splitStatements(m.sql) {
			if err := db.Exec(stmt).Error; err != nil {
				return fmt.Errorf("%s statement %d: %w", m.name, i+1, err)
			}
		}
		rec := historyRow{Version: m.version, Name: m.name, Checksum: m.checksum, AppliedAt: time.Now().UTC().Truncate(time.Second)}
		if err := db.Table(ms.Table).Create(&rec).Error; err != nil {
			return fmt.Errorf("record %s: %w", m.name, err)
		}
	}
	return nil
}

// splitStatements cuts a migration file into statements at semicolons that
// end a line, dropping "--" comment lines. Migrations therefore keep one
// statement terminator per line end and no semicolons inside literals,
// which lets them run without the driver's multiStatements mode.
func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(sql) {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"); s != "" {
				stmts = append(stmts, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}
