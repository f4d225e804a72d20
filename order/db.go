package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libtnb/sqlite"
	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Pool defaults. MySQL: enough connections for the workers and the gateway's
// reads without letting one process swamp max_connections; connections are
// recycled before a typical wait_timeout or a proxy's idle cut. SQLite: a
// few connections so WAL readers run beside the one writer.
const (
	defaultMySQLMaxOpen     = 16
	defaultSQLiteMaxOpen    = 4
	defaultConnMaxLifetime  = 5 * time.Minute
	defaultMySQLDialTimeout = 5 * time.Second
	// sqliteBusyTimeout is how long a writer waits for SQLite's single
	// write lock before failing with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	// slowQueryThreshold is the duration above which a query is logged at
	// warn level.
	slowQueryThreshold = 200 * time.Millisecond
)

// DBConfig selects and tunes the database.
type DBConfig struct {
	// DSN is a MySQL/MariaDB DSN (go-sql-driver format). Empty selects the
	// embedded SQLite file DataDir/seckill.db.
	DSN string
	// DataDir holds the SQLite file; it is created when missing. Default
	// "./data".
	DataDir string
	// MaxOpenConns, MaxIdleConns and ConnMaxLifetime tune the pool; zero
	// selects a default (MySQL 16 open, SQLite 4 open; idle = open;
	// lifetime 5m).
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// Logger receives slow queries at warn level. Nil uses slog.Default().
	Logger *slog.Logger
}

// OpenDB opens the configured database and pings it, so that a wrong DSN or
// an unreachable server stops the process at start rather than at the first
// order. Errors name the backend and never contain the password.
func OpenDB(ctx context.Context, cfg DBConfig) (*gorm.DB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	gcfg := &gorm.Config{
		TranslateError: true,
		Logger:         &gormLogger{log: log, slow: slowQueryThreshold},
		// Microsecond UTC timestamps compare and round-trip the same on
		// MySQL DATETIME(6) and SQLite text, so a deadline written on one
		// backend means the same instant on the other.
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	if cfg.DSN == "" {
		return openSQLite(ctx, cfg, gcfg)
	}
	return openMySQL(ctx, cfg, gcfg)
}

func openMySQL(ctx context.Context, cfg DBConfig, gcfg *gorm.Config) (*gorm.DB, error) {
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
		dsn.Timeout = defaultMySQLDialTimeout
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
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fail(err)
	}
	maxOpen := orDefault(cfg.MaxOpenConns, defaultMySQLMaxOpen)
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(min(orDefault(cfg.MaxIdleConns, maxOpen), maxOpen))
	sqlDB.SetConnMaxLifetime(orDefault(cfg.ConnMaxLifetime, defaultConnMaxLifetime))
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fail(err)
	}
	return db, nil
}

func openSQLite(ctx context.Context, cfg DBConfig, gcfg *gorm.Config) (*gorm.DB, error) {
	dir := cfg.DataDir
	if dir == "" {
		dir = "./data"
	}
	path := filepath.Join(dir, "seckill.db")
	fail := func(err error) error { return fmt.Errorf("open sqlite %s: %w", path, err) }
	if err := os.MkdirAll(dir, 0o750); err != nil {
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
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fail(err)
	}
	maxOpen := orDefault(cfg.MaxOpenConns, defaultSQLiteMaxOpen)
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(min(orDefault(cfg.MaxIdleConns, maxOpen), maxOpen))
	// A SQLite connection is a file handle; recycling it buys nothing and
	// costs the pragmas again, so keep connections unless asked otherwise.
	sqlDB.SetConnMaxLifetime(cfg.ConnMaxLifetime)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fail(err)
	}
	return db, nil
}

// orDefault returns v, or def when v is not positive.
func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
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

// maxTxAttempts bounds how often a transaction is run again after the
// database rolled it back to break a deadlock.
const maxTxAttempts = 5

// transaction runs fn in a transaction and runs it again when MySQL picked
// it as a deadlock victim or timed out its lock wait: InnoDB rolls such a
// transaction back whole ("try restarting transaction"), so a retry is the
// documented cure. Cancels and payments touch an order, its activity and
// the outbox in one transaction, and concurrent ones can deadlock there.
func (s *Store) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = s.db.WithContext(ctx).Transaction(fn)
		if err == nil || !retryableTx(err) || attempt == maxTxAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

func retryableTx(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
