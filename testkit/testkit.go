// Package testkit connects integration tests to the real services named by
// environment variables. A test whose service is not configured is skipped
// with a message naming the variable, except under CI=true, where a skipped
// integration test would hide a broken setup, so it fails instead.
package testkit

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Environment variables that point the integration tests at real services.
const (
	EnvRedisURL = "SECKILL_TEST_REDIS_URL" // e.g. redis://127.0.0.1:6379/0
	EnvMySQLDSN = "SECKILL_TEST_MYSQL_DSN" // e.g. root@tcp(127.0.0.1:3306)/test?parseTime=true
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Require returns the value of the environment variable name, or skips the
// test (fails it under CI) when it is unset.
func Require(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if InCI() {
			t.Fatalf("%s is not set: this %s integration test must run in CI", name, what)
		}
		t.Skipf("%s is not set: skipping the %s integration test (set it to run against a real %s)", name, what, what)
	}
	return v
}

// RequireBinary returns the path of the executable name, looked up in PATH,
// or skips the test (fails it under CI=true) when it is not installed: a
// test that starts its own server process (a Redis Cluster, say) is an
// integration test like the others, and CI installs what it needs.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is not installed (%v): this integration test must run in CI", name, err)
		}
		t.Skipf("%s is not installed (%v): skipping this integration test (install it to run it)", name, err)
	}
	return path
}

// RedisURL returns the real Redis URL for integration tests.
func RedisURL(t testing.TB) string { return Require(t, EnvRedisURL, "Redis") }

// MySQLDSN creates a fresh, empty database on the configured MySQL/MariaDB
// server and returns a DSN for it; the database is dropped when the test
// ends. Tests in different packages run in parallel, so they must not share
// tables.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := Require(t, EnvMySQLDSN, "MySQL")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("%s does not parse: %v", EnvMySQLDSN, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("open %s: %v", EnvMySQLDSN, err)
	}
	t.Cleanup(func() { admin.Close() })
	name := "seckill_t_" + RandomHex(6)
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create test database on %s: %v", EnvMySQLDSN, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}

// RandomHex returns 2n random hex digits, for names that must not collide
// between test runs sharing one server.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
