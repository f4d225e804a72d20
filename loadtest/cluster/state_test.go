package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := readState(dir); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("readState of an empty directory: %v, want ErrNoCluster", err)
	}
	s := Settings{BasePort: 21000, Demo: true, Env: map[string]string{"SECKILL_WORKER_BATCH": "20"}}.withDefaults()
	st := &state{Version: stateVersion, Settings: s, Secrets: newSecrets(), Procs: plan(s, testPaths(t), newSecrets())}
	st.Procs[0].PID, st.Procs[0].StartTicks = 123, 456
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("state file mode %v: it holds the secrets, only its owner may read it", fi.Mode())
	}
	got, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Settings.equal(s) || got.Secrets != st.Secrets || got.Procs[0].PID != 123 || got.Procs[0].StartTicks != 456 ||
		strings.Join(got.Procs[0].Argv, " ") != strings.Join(st.Procs[0].Argv, " ") || got.Procs[len(got.Procs)-1].StopSignal != st.Procs[len(st.Procs)-1].StopSignal {
		t.Fatalf("read back %+v, want %+v", got, st)
	}

	st.Version = stateVersion + 1
	if err := writeState(dir, st); err != nil {
		t.Fatal(err)
	}
	if _, err := readState(dir); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("a state file of another version: %v, want an error naming the version", err)
	}
}

func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "another command") {
		t.Fatalf("second lock: %v, want an error saying another command holds it", err)
	}
	unlock()
	unlock2, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestPurgeRefusesAStrangeDirectory(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "precious")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Purge(dir); err == nil {
		t.Fatal("Purge deleted a directory that holds no cluster")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(dir, DefaultDirName)
	if err := os.MkdirAll(filepath.Join(named, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Purge(named); err != nil {
		t.Fatalf("Purge of a stateless %s: %v", DefaultDirName, err)
	}
	if _, err := os.Stat(named); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", named, err)
	}
}
