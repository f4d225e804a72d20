package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// stateVersion changes when the state file's meaning does; an older one is
// refused with the advice to purge.
const stateVersion = 1

const (
	stateFile = "state.json"
	lockFile  = "lock"
)

// ErrNoCluster is returned by Load when the directory holds no cluster.
var ErrNoCluster = errors.New("cluster: no cluster state")

// state is the state file: everything needed to find, stop and restart the
// processes of a cluster from another process. It holds the secrets, so it
// is readable by its owner only.
type state struct {
	Version  int      `json:"version"`
	Settings Settings `json:"settings"`
	Secrets  secrets  `json:"secrets"`
	Root     string   `json:"root"`
	// ExitWithCaller: see Config.ExitWithCaller; Start keeps to it.
	ExitWithCaller bool    `json:"exit_with_caller,omitempty"`
	ReadyTimeout   int64   `json:"ready_timeout_ns"`
	StopTimeout    int64   `json:"stop_timeout_ns"`
	Procs          []*proc `json:"processes"`
}

func (s *state) proc(name string) *proc {
	for _, p := range s.Procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// readState reads dir's state file; ErrNoCluster when there is none.
func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", ErrNoCluster, dir)
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w (delete the directory if no cluster runs from it)", filepath.Join(dir, stateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("cluster: %s is of version %d, this tool writes %d: stop that cluster with the tool that started it, or delete %s", filepath.Join(dir, stateFile), st.Version, stateVersion, dir)
	}
	return &st, nil
}

// writeState replaces dir's state file atomically: a reader in another
// process sees the old file or the new one, never half of one.
func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, stateFile))
}

// lockDir takes dir's lock, so two commands never start or stop one cluster
// at once; the lock goes with the process if it dies.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("cluster: another command is starting or stopping the cluster in %s", dir)
		}
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
