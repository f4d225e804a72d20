// Package sqldb is the SQL plumbing shared by the modules that keep tables
// in the pipeline's database (order, notifier): opening MySQL/MariaDB or
// the embedded SQLite with the settings the code relies on, running a set
// of versioned migrations (Migrations), and transactions that survive a
// MySQL deadlock (Transaction). It knows no table of its own.
package sqldb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/libtnb/sqlite"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Defaults of Config. MySQL: enough connections for the workers and the
// gateway's reads without letting one process swamp max_connections;
// connections are recycled before a typical wait_timeout or a proxy's idle
// cut. SQLite: a few connections so WAL readers run beside the one writer.
const (
	DefaultDataDir            = "./data"
	DefaultMySQLMaxOpenConns  = 16
	DefaultSQLiteMaxOpenConns = 4
	// DefaultConnMaxLifetime applies to MySQL only: a SQLite connection is
	// a file handle, and recycling it buys nothing and costs the pragmas
	// again, so SQLite keeps its connections unless asked otherwise.
	DefaultConnMaxLifetime = 5 * time.Minute
	// DefaultDialTimeout is the MySQL connect timeout when the DSN sets
	// none (the driver's own default waits for the OS).
	DefaultDialTimeout = 5 * time.Second
)

const (
	// sqliteBusyTimeout is how long a writer waits for SQLite's single
	// write lock before failing with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	// slowQueryThreshold is the duration above which a query is logged at
	// warn level.
	slowQueryThreshold = 200 * time.Millisecond
)

// InsertBatchSize is the rows per INSERT to give gorm's CreateInBatches: it
// keeps one statement under every supported driver's placeholder limit
// (SQLite's 32766) for rows of up to 65 columns.
const InsertBatchSize = 500

// Config selects and tunes the database. Zero values select the defaults.
type Config struct {
	// DSN is a MySQL/MariaDB DSN (go-sql-driver format). Empty selects the
	// embedded SQLite file DataDir/seckill.db.
	DSN string
	// DataDir holds the SQLite file; it is created when missing. Default
	// DefaultDataDir.
	DataDir string
	// MaxOpenConns caps the pool. Default DefaultMySQLMaxOpenConns or
	// DefaultSQLiteMaxOpenConns.
	MaxOpenConns int
	// MaxIdleConns is the idle connections kept, at most MaxOpenConns.
	// Default MaxOpenConns.
	MaxIdleConns int
	// ConnMaxLifetime recycles connections. Default
	// DefaultConnMaxLifetime on MySQL; on SQLite zero keeps them.
	ConnMaxLifetime time.Duration
	// Logger receives slow queries at warn level. Nil uses slog.Default().
	Logger *slog.Logger
	// TracerProvider, when set and not a noop provider, traces the
	// statements that run inside a traced span (see Trace). Default nil:
	// no statement is traced, and gorm runs without the plugin.
	TracerProvider trace.TracerProvider
}

func (c Config) withDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxOpenConns <= 0 {
		c.MaxOpenConns = DefaultSQLiteMaxOpenConns
		if c.DSN != "" {
			c.MaxOpenConns = DefaultMySQLMaxOpenConns
		}
	}
	if c.MaxIdleConns <= 0 || c.MaxIdleConns > c.MaxOpenConns {
		c.MaxIdleConns = c.MaxOpenConns
	}
	if c.DSN != "" && c.ConnMaxLifetime <= 0 {
		c.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Open opens the configured database and pings it, so that a wrong DSN or
// an unreachable server stops the process at start rather than at the first
// order. Errors name the backend and never contain the password.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
	cfg = cfg.withDefaults()
	gcfg := &gorm.Config{
		TranslateError: true,
		Logger:         &gormLogger{log: cfg.Logger, slow: slowQueryThreshold},
		// Microsecond UTC timestamps compare and round-trip the same on
		// MySQL DATETIME(6) and SQLite text, so a deadline written on one
		// backend means the same instant on the other.
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	open := openMySQL
	if cfg.DSN == "" {
		open = openSQLite
	}
	db, err := open(ctx, cfg, gcfg)
	if err != nil {
		return nil, err
	}
	if err := Trace(db, cfg.TracerProvider); err != nil {
		if sqlDB, derr := db.DB(); derr == nil {
			sqlDB.Close()
		}
		return nil, err
	}
	return db, nil
}

func openMySQL(ctx context.Context, cfg Config, gcfg *gorm.Config) (*gorm.DB, error) {
	dsn, err := gomysql.ParseDSN(cfg.DSN)
	if err != nil {
		// The parser's messages do not quote the DSN, but a password may
		// still contain whatever the user typed: never pass it through.
		return nil, fmt.Errorf("open mysql: invalid DSN: %w", redact(err, passwordOf(cfg.DSN)))
	}
	dsn.ParseTime = true
	dsn.Loc = time.UTC
	// Interpolating arguments client-side halves the round trips of every
	// statement (no prepare/execute pair); the driver refuses it for the
	// few charsets where it would be unsafe. An explicit setting wins.
	if !strings.Contains(cfg.DSN, "interpolateParams=") {
		dsn.InterpolateParams = true
	}
	if dsn.Timeout == 0 {
		dsn.Timeout = DefaultDialTimeout
	}
	where := dsn.Addr
	if dsn.DBName != "" {
		where += "/" + dsn.DBName
	}
	fail := func(err error) error {
		return fmt.Errorf("open mysql %s: %w", where, redact(err, dsn.Passwd))
	}
	db, err := gorm.Open(mysql.New(mysql.Config{DSNConfig: dsn}), gcfg)
	if err != nil {
		return nil, fail(err)
	}
	if err := pool(ctx, db, cfg); err != nil {
		return nil, fail(err)
	}
	return db, nil
}

func openSQLite(ctx context.Context, cfg Config, gcfg *gorm.Config) (*gorm.DB, error) {
	path := filepath.Join(cfg.DataDir, "seckill.db")
	fail := func(err error) error { return fmt.Errorf("open sqlite %s: %w", path, err) }
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fail(err)
	}
	// WAL lets readers run while the single writer commits; immediate
	// transactions take the write lock at BEGIN, so two writers queue on
	// busy_timeout instead of deadlocking on a read-to-write upgrade.
	// synchronous=NORMAL is the WAL setting SQLite recommends: a commit
	// survives a process crash; only a power loss may drop the last ones.
	dsn := "file:" + path + "?_txlock=immediate" +
		fmt.Sprintf("&_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(1)"
	db, err := gorm.Open(sqlite.Open(dsn), gcfg)
	if err != nil {
		return nil, fail(err)
	}
	if err := pool(ctx, db, cfg); err != nil {
		return nil, fail(err)
	}
	return db, nil
}

// passwordOf extracts the password of a DSN "user:pass@..." that failed to
// parse, so that it can be cut out of the parser's error.
func passwordOf(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	cred := dsn[:at]
	if i := strings.Index(cred, ":"); i >= 0 {
		return cred[i+1:]
	}
	return ""
}

// redactedError hides a secret in an error's message while keeping the
// original reachable for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), secret, "***"), err: err}
}

// gormLogger keeps gorm quiet: callers handle every error themselves, so
// only slow queries are worth a log line.
type gormLogger struct {
	log  *slog.Logger
	slow time.Duration
}

var _ logger.Interface = (*gormLogger)(nil)

func (l *gormLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.log.WarnContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.log.DebugContext(ctx, "gorm: "+fmt.Sprintf(msg, args...))
}

func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	elapsed := time.Since(begin)
	switch {
	case l.slow > 0 && elapsed > l.slow:
		sql, rows := fc()
		l.log.WarnContext(ctx, "slow query", "elapsed", elapsed, "rows", rows, "sql", truncate(sql, 500))
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound) && l.log.Enabled(ctx, slog.LevelDebug):
		sql, _ := fc()
		l.log.DebugContext(ctx, "query failed", "err", err, "sql", truncate(sql, 500))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// pool sizes db's connection pool from cfg and checks that a connection
// opens; on failure the pool is closed.
func pool(ctx context.Context, db *gorm.DB, cfg Config) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	sqlDB.SetMaxOpenConns(cfg.MaxOpenConns)
	sqlDB.SetMaxIdleConns(cfg.MaxIdleConns)
	sqlDB.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return err
	}
	return nil
}
