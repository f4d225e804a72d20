package order

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenDBErrors(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cfg    DBConfig
		want   string // the error must contain it
		secret string // the error must not contain it
	}{
		{
			name:   "mysql closed port",
			cfg:    DBConfig{DSN: "seckill:s3cret-pw@tcp(127.0.0.1:1)/seckill?timeout=2s"},
			want:   "open mysql",
			secret: "s3cret-pw",
		},
		{
			name:   "mysql unparsable DSN",
			cfg:    DBConfig{DSN: "seckill:s3cret-pw@tcp(127.0.0.1:3306/seckill"},
			want:   "open mysql",
			secret: "s3cret-pw",
		},
		{
			name: "sqlite data dir is a file",
			cfg:  DBConfig{DataDir: notADir},
			want: "open sqlite " + filepath.Join(notADir, "seckill.db"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := OpenDB(context.Background(), tt.cfg)
			if err == nil {
				sqlDB, _ := db.DB()
				sqlDB.Close()
				t.Fatal("OpenDB succeeded, want an error")
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

func TestOpenDBSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	db := openTestDB(t, DBConfig{DataDir: dir})
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
}

func TestOpenDBMySQLSettings(t *testing.T) {
	b := backends()[1]
	db := b.open(t)
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	if got := sqlDB.Stats().MaxOpenConnections; got != defaultMySQLMaxOpen {
		t.Errorf("MaxOpenConnections = %d, want the default %d", got, defaultMySQLMaxOpen)
	}
	// parseTime is forced: a DATETIME scans into time.Time in UTC.
	var a Activity
	s := NewStore(db)
	created := newActivity(t, s, 1)
	if err := db.Take(&a, created.ID).Error; err != nil {
		t.Fatalf("read activity back (parseTime forced?): %v", err)
	}
	if a.StartsAt.Location().String() != "UTC" {
		t.Errorf("StartsAt location = %s, want UTC", a.StartsAt.Location())
	}
}
