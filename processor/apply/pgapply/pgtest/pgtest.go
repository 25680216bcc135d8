// Package pgtest runs a throwaway PostgreSQL cluster for tests: initdb in a
// temporary directory, a free TCP port on 127.0.0.1, pg_ctl start, and
// pg_ctl stop at the end. The pgapply tests and benchmarks use it, so they
// run in the unit tier against a real server.
//
// The server binaries come from $CDCSYNC_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin (Debian's postgresql package, which
// integration/realstack/setup.sh installs). When there is none, Start
// returns ErrNoPostgres; tests skip on it, except under CI=true, where a
// missing PostgreSQL fails the test.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ErrNoPostgres says no PostgreSQL server binaries were found.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries (set CDCSYNC_PG_BIN or install Debian's postgresql package)")

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Bin  string // the directory of pg_ctl, initdb, psql
	Dir  string // the cluster's directory (data, socket, log)
	Port int
	User string // the superuser, trust authentication

	asPG []string // runuser prefix when we are root
	mu   sync.Mutex
	up   bool
}

// FindBin returns the directory of the PostgreSQL server binaries.
func FindBin() (string, error) {
	if b := os.Getenv("CDCSYNC_PG_BIN"); b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start initialises and starts a cluster in a new temporary directory.
// extraConf lines are appended to postgresql.conf.
func Start(extraConf ...string) (*Cluster, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cdcsync-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Bin: bin, Dir: dir, User: "cdcsync"}
	if os.Geteuid() == 0 {
		// The server refuses to run as root: run it as the postgres user
		// the Debian package creates.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.asPG = []string{"runuser", "-u", "postgres", "--"}
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.Port = port
	if out, err := c.run(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", c.User, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(port),
		"unix_socket_directories = '" + dir + "'",
		"max_connections = 100",
		"shared_buffers = 64MB",
	}
	conf = append(conf, extraConf...)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, err = f.WriteString(strings.Join(conf, "\n") + "\n")
	f.Close()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.StartServer(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// StartTB starts a cluster for a test or benchmark and stops it at the
// end. Without PostgreSQL it skips, or fails under CI=true.
func StartTB(tb testing.TB, extraConf ...string) *Cluster {
	tb.Helper()
	c, err := Start(extraConf...)
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") != "true" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Remove)
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, c.asPG...), name)
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	return cmd.CombinedOutput()
}

// StartServer starts the (stopped) server again.
func (c *Cluster) StartServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.up {
		return nil
	}
	out, err := c.run(filepath.Join(c.Bin, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.up = true
	return nil
}

// StopServer stops the server (fast shutdown: sessions are ended with
// 57P01 admin_shutdown).
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		return nil
	}
	out, err := c.run(filepath.Join(c.Bin, "pg_ctl"), "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	c.up = false
	return nil
}

// Remove stops the server and deletes the cluster's directory.
func (c *Cluster) Remove() {
	_ = c.StopServer()
	os.RemoveAll(c.Dir)
}

// DSN returns a connection string for database db (postgres when empty).
func (c *Cluster) DSN(db string) string {
	if db == "" {
		db = "postgres"
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", c.User, c.Port, db)
}

// Psql runs sql with psql in database db and returns its unaligned,
// tuples-only output.
func (c *Cluster) Psql(db, sql string) (string, error) {
	if db == "" {
		db = "postgres"
	}
	cmd := exec.Command(filepath.Join(c.Bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", c.User, "-d", db,
		"-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-F", "\t")
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql: %v: %s", err, out)
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
