package vmtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process this package started inside the namespace. It is
// stopped by its PID only.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited and its output is read
	err  error         // Wait's error, once done
	once sync.Once
}

// startInNetns runs prog inside netns with ip netns exec, which execs prog
// itself, so the PID is prog's. The process gets its own process group, so
// a Ctrl-C on the terminal reaches this package (which stops it in order)
// and not the process directly, and it is killed if this process dies
// first.
func startInNetns(name, netns string, env []string, stdout, stderr io.Writer, prog string, args ...string) (*proc, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", netns, prog}, args...)...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *proc) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace, then SIGKILLs and waits. It is safe
// to call more than once and on a process that already exited.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) error {
	var err error
	p.once.Do(func() {
		if p.exited() {
			return
		}
		p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.PID())
		}
	})
	return err
}

// childEnv is this process's environment without BOOTFORGE_* variables:
// the private server's settings are its config file's alone, never the
// operator's overrides for the real server.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BOOTFORGE_") {
			env = append(env, kv)
		}
	}
	return env
}

// lineLog keeps the lines a process writes, up to a bound, and tells
// waiters when a new line arrives.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	cur     bytes.Buffer
	dropped int
	max     int
	changed chan struct{}
}

func newLineLog(max int) *lineLog { return &lineLog{max: max, changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range p {
		if b != '\n' {
			l.cur.WriteByte(b)
			continue
		}
		if len(l.lines) < l.max {
			l.lines = append(l.lines, l.cur.String())
		} else {
			l.dropped++
		}
		l.cur.Reset()
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// Lines returns the complete lines so far and the unfinished one.
func (l *lineLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.lines...)
	if l.cur.Len() > 0 {
		out = append(out, l.cur.String())
	}
	if l.dropped > 0 {
		out = append(out, fmt.Sprintf("(%d more lines not kept)", l.dropped))
	}
	return out
}

// wait returns a channel closed at the next write.
func (l *lineLog) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// tail returns the last n lines.
func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
