package demo

import (
	_ "embed"
	"os/exec"
	"syscall"
	"time"
)

// stopChildren sends SIGTERM to every child's process group, waits for
// them to finish (their shutdowns take a second or two), and kills what is
// left after a deadline.
func (d *demo) stopChildren() {
	d.mu.Lock()
	d.stopping = true
	children := append([]*child(nil), d.children...)
	d.mu.Unlock()
	for _, c := range children {
		c.signal(syscall.SIGTERM)
	}
	deadline := time.After(5 * time.Second)
	for _, c := range children {
		select {
		case <-c.exited():
		case <-deadline:
			for _, c := range children {
				c.signal(syscall.SIGKILL)
			}
			for _, c := range children {
				<-c.exited()
			}
			return
		}
	}
}

// child is one child process of the demo, restarted after d.restart when
// it dies while the demo runs.
type child struct {
	d                       *demo
	name, addr, zone, admin string
	bin                     string
	args                    []string

	// pid and done belong to the current process; d.mu guards them.
	pid  int
	done chan struct{}
}

func (c *child) start() error {
	cmd := exec.Command(c.bin, c.args...)
	w := c.d.out.prefixed("[" + c.name + "] ")
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = childAttrs()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	c.d.mu.Lock()
	c.pid, c.done = cmd.Process.Pid, done
	c.d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		close(done)
		c.d.mu.Lock()
		stopping := c.d.stopping
		c.d.mu.Unlock()
		if stopping {
			return
		}
		c.d.log.Warn("child exited", "name", c.name, "pid", cmd.Process.Pid, "status", exitText(err))
		if c.d.restart <= 0 {
			return
		}
		time.AfterFunc(c.d.restart, func() {
			c.d.mu.Lock()
			stopping := c.d.stopping
			c.d.mu.Unlock()
			if stopping {
				return
			}
			if err := c.start(); err != nil {
				c.d.log.Error("restarting a child", "name", c.name, "err", err)
				return
			}
			c.d.mu.Lock()
			pid := c.pid
			c.d.mu.Unlock()
			c.d.log.Info("child restarted", "name", c.name, "pid", pid)
		})
	}()
	return nil
}

func (c *child) exited() <-chan struct{} {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.done
}

// signal sends sig to the child's process group, if it still runs.
func (c *child) signal(sig syscall.Signal) {
	c.d.mu.Lock()
	pid, done := c.pid, c.done
	c.d.mu.Unlock()
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-pid, sig)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
