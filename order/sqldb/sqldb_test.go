package sqldb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/flashsale/seckill/testkit"
)

// open opens cfg for one test and closes it at the end.
func open(t testing.TB, cfg Config) *gorm.DB {
	t.Helper()
	db, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

func TestOpenErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    Config
		want   string // the error must contain it
		secret string // the error must not contain it
	}{
		{
			name:   "mysql closed port",
			cfg:    Config{DSN: "seckill:s3cret-pw@tcp(127.0.0.1:1)/seckill?timeout=2s"},
			want:   "open mysql",
			secret: "s3cret-pw",
		},
		{
			name:   "mysql unparsable DSN",
			cfg:    Config{DSN: "seckill:s3cret-pw@tcp(127.0.0.1:3306/seckill"},
			want:   "open mysql",
			secret: "s3cret-pw",
		},
		{
			name: "sqlite data dir is a file",
			cfg:  Config{DataDir: notADir},
			want: "open sqlite " + filepath.Join(notADir, "seckill.db"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(context.Background(), tt.cfg)
			if err == nil {
				sqlDB, _ := db.DB()
				sqlDB.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestOpenSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	db := open(t, Config{DataDir: dir})
	if _, err := os.Stat(filepath.Join(dir, "seckill.db")); err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	pragmas := []struct{ name, want string }{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, p := range pragmas {
		var got string
		if err := db.Raw("PRAGMA " + p.name).Scan(&got).Error; err != nil {
			t.Fatalf("PRAGMA %s: %v", p.name, err)
		}
		if got != p.want {
			t.Errorf("PRAGMA %s = %q, want %q", p.name, got, p.want)
		}
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if got := sqlDB.Stats().MaxOpenConnections; got != DefaultSQLiteMaxOpenConns {
		t.Errorf("MaxOpenConnections = %d, want the default %d", got, DefaultSQLiteMaxOpenConns)
	}
}

func TestOpenMySQLSettings(t *testing.T) {
	db := open(t, Config{DSN: testkit.MySQLDSN(t)})
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if got := sqlDB.Stats().MaxOpenConnections; got != DefaultMySQLMaxOpenConns {
		t.Errorf("MaxOpenConnections = %d, want the default %d", got, DefaultMySQLMaxOpenConns)
	}
	// parseTime is forced: a DATETIME scans into time.Time in UTC.
	if err := db.Exec("CREATE TABLE stamps (at DATETIME(6) NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 11, 11, 0, 0, 0, 123456000, time.UTC)
	if err := db.Exec("INSERT INTO stamps (at) VALUES (?)", want).Error; err != nil {
		t.Fatal(err)
	}
	var got time.Time
	if err := db.Raw("SELECT at FROM stamps").Row().Scan(&got); err != nil {
		t.Fatalf("read DATETIME back (parseTime forced?): %v", err)
	}
	if !got.Equal(want) || got.Location().String() != "UTC" {
		t.Errorf("read back %v (%s), want %v in UTC", got, got.Location(), want)
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"sqlite", Config{},
			Config{DataDir: DefaultDataDir, MaxOpenConns: DefaultSQLiteMaxOpenConns, MaxIdleConns: DefaultSQLiteMaxOpenConns}},
		{"mysql", Config{DSN: "u@tcp(db:3306)/s"},
			Config{DSN: "u@tcp(db:3306)/s", DataDir: DefaultDataDir, MaxOpenConns: DefaultMySQLMaxOpenConns,
				MaxIdleConns: DefaultMySQLMaxOpenConns, ConnMaxLifetime: DefaultConnMaxLifetime}},
		{"idle capped at open", Config{DSN: "u@tcp(db:3306)/s", MaxOpenConns: 8, MaxIdleConns: 20, ConnMaxLifetime: time.Minute},
			Config{DSN: "u@tcp(db:3306)/s", DataDir: DefaultDataDir, MaxOpenConns: 8, MaxIdleConns: 8, ConnMaxLifetime: time.Minute}},
		{"sqlite keeps its connections", Config{DataDir: "d", MaxOpenConns: 2, MaxIdleConns: 1},
			Config{DataDir: "d", MaxOpenConns: 2, MaxIdleConns: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults()
			if got.Logger == nil {
				t.Error("Logger not defaulted")
			}
			got.Logger = nil
			if got != tt.want {
				t.Errorf("withDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}
