package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// MissingError names the OS packages a cluster needs that are not
// installed, and the command that installs them.
type MissingError struct {
	Programs []string // what was looked for
	Packages []string // the Debian/Ubuntu packages that provide them
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("cluster: not installed: %s\n  install them with: %s\n  (or: make cluster-up ARGS=--install)\n"+
		"  The packages' own services (ports 80, 6379, 3306) are not used and may stay stopped.",
		strings.Join(e.Programs, ", "), e.InstallCommand())
}

// InstallCommand is the apt-get command line that installs the packages.
func (e *MissingError) InstallCommand() string {
	sudo := "sudo "
	if os.Geteuid() == 0 {
		sudo = ""
	}
	return sudo + "apt-get install -y " + strings.Join(e.Packages, " ")
}

// osProgram is a program from an OS package, under one of its names.
type osProgram struct {
	names []string
	pkg   string
	dst   *string
}

// findProgram returns the path of the first of names in PATH or in the
// sbin directories, which are not in a normal user's PATH (nginx and
// mariadbd live there).
func findProgram(names ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, true
			}
		}
	}
	return "", false
}

// locatePrograms fills p's OS programs, installing their packages first
// when install is set; else a missing one is a *MissingError.
func locatePrograms(ctx context.Context, p *paths, install bool, log io.Writer) error {
	progs := []osProgram{
		{[]string{"nginx"}, "nginx", &p.nginx},
		{[]string{"redis-server"}, "redis-server", &p.redisServer},
		{[]string{"mariadbd", "mysqld"}, "mariadb-server", &p.mariadbd},
		{[]string{"mariadb-install-db", "mysql_install_db"}, "mariadb-server", &p.installDB},
	}
	find := func() *MissingError {
		var m MissingError
		for _, pr := range progs {
			path, ok := findProgram(pr.names...)
			*pr.dst = path
			if !ok {
				m.Programs = append(m.Programs, pr.names[0])
				if !slices.Contains(m.Packages, pr.pkg) {
					m.Packages = append(m.Packages, pr.pkg)
				}
			}
		}
		if len(m.Programs) == 0 {
			return nil
		}
		return &m
	}
	// Optional: without it the cluster runs, and a chaos report says it
	// cannot tell which alerts fired.
	p.prometheus, _ = findProgram("prometheus")
	m := find()
	if m == nil {
		return nil
	}
	if !install {
		return m
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("cluster: --install needs apt-get; install %s with your package manager", strings.Join(m.Packages, " "))
	}
	fmt.Fprintf(log, "cluster: installing %s with apt-get\n", strings.Join(m.Packages, " "))
	var sudo []string
	if os.Geteuid() != 0 {
		sudo = []string{"sudo"}
	}
	for _, args := range [][]string{
		append(sudo, "apt-get", "update", "-qq"),
		append(sudo, append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq"}, m.Packages...)...),
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("cluster: %s: %w", strings.Join(args, " "), err)
		}
	}
	if m := find(); m != nil {
		return fmt.Errorf("cluster: still missing after apt-get install: %w", m)
	}
	return nil
}

// seckillBinaries are what `make build` makes and the cluster runs.
func seckillBinaries() []string {
	return []string{"seckill-gateway", "seckill-order-worker", "seckill-notifier"}
}

func checkBinaries(binDir string) error {
	var missing []string
	for _, b := range seckillBinaries() {
		if st, err := os.Stat(filepath.Join(binDir, b)); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster: %s missing in %s: run make build (make cluster-up does)", strings.Join(missing, ", "), binDir)
	}
	return nil
}

// goCommand is the go command: on PATH, else the toolchain this tool was
// built with.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goRun runs the go command in dir and returns its standard output.
func goRun(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cluster: go %s (in %s): %w\n%s", strings.Join(args, " "), dir, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Modules the helper programs are built from, and the module whose go.mod
// pins each: nats-server at the version mq links (as
// scripts/ci-services.sh builds it), toxiproxy at the tool version
// loadtest's go.mod names.
const (
	natsModule      = "github.com/nats-io/nats-server/v2"
	toxiproxyModule = "github.com/Shopify/toxiproxy/v2"
	toxiproxyMain   = toxiproxyModule + "/cmd/server"
)

// buildHelpers builds what the cluster runs besides the OS packages and the
// seckill binaries: nats-server and toxiproxy-server into the cache, once
// per version, and this tool (whose smtp-sink command is the mail sink)
// into Dir/bin, each time, so it is never stale.
func buildHelpers(ctx context.Context, root, cacheDir string, p *paths, log io.Writer) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	natsVer, err := goRun(ctx, filepath.Join(root, "mq"), nil, "list", "-m", "-f", "{{.Version}}", natsModule)
	if err != nil {
		return err
	}
	// The path scripts/ci-services.sh builds to: one build serves both.
	p.natsServer = filepath.Join(cacheDir, "nats-server")
	out, _ := exec.CommandContext(ctx, p.natsServer, "--version").Output()
	if strings.TrimSpace(string(out)) != "nats-server: "+natsVer {
		fmt.Fprintf(log, "cluster: building nats-server %s into %s (once per version)\n", natsVer, p.natsServer)
		if _, err := goRun(ctx, filepath.Join(root, "mq"), []string{"CGO_ENABLED=0"},
			"build", "-trimpath", "-o", p.natsServer+".tmp", natsModule); err != nil {
			return err
		}
		if err := os.Rename(p.natsServer+".tmp", p.natsServer); err != nil {
			return err
		}
	}

	toxiVer, err := goRun(ctx, filepath.Join(root, "loadtest"), nil, "list", "-m", "-f", "{{.Version}}", toxiproxyModule)
	if err != nil {
		return err
	}
	p.toxiproxy = filepath.Join(cacheDir, "toxiproxy-server-"+toxiVer)
	if _, err := os.Stat(p.toxiproxy); err != nil {
		fmt.Fprintf(log, "cluster: building toxiproxy-server %s into %s (once per version)\n", toxiVer, p.toxiproxy)
		if _, err := goRun(ctx, filepath.Join(root, "loadtest"), []string{"CGO_ENABLED=0"},
			"build", "-trimpath", "-ldflags", "-X "+toxiproxyModule+".Version="+toxiVer,
			"-o", p.toxiproxy+".tmp", toxiproxyMain); err != nil {
			return err
		}
		if err := os.Rename(p.toxiproxy+".tmp", p.toxiproxy); err != nil {
			return err
		}
	}

	fmt.Fprintf(log, "cluster: building the cluster tool (the SMTP sink) into %s\n", p.toolBin)
	if err := os.MkdirAll(filepath.Dir(p.toolBin), 0o700); err != nil {
		return err
	}
	_, err = goRun(ctx, root, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-o", p.toolBin, "./loadtest/cmd/cluster")
	return err
}
