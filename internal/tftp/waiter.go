package tftp

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A waiter runs the transfers beyond the first few (see sock) on one
// thread: it waits for all their sockets in one epoll set, and for each
// packet that comes it makes one recvfrom and feeds it to the transfer's
// sender, which sends the next window from the same thread. That is
// dnsmasq's model, with epoll for poll. Through Go's netpoller instead,
// each ACK cost a recvfrom that found nothing, a park, a wake through
// epoll and a second recvfrom, and a goroutine switch each way.
//
// The waiter owns a transfer's sender from wait until it is done; the
// transfer's goroutine sleeps meanwhile, and logs and closes it after.
// Timeouts are checked every scanEvery, far finer than any timeout a
// transfer uses.
type waiter struct {
	ep   int // the epoll set: the eventfd and every transfer's socket
	wake int // an eventfd: a transfer was added, or stop
	stop atomic.Bool

	mu    sync.Mutex
	added []*sender // handed over, not yet in the set
}

// scanEvery is how often a waiter looks for timeouts and aborts.
const scanEvery = 10 * time.Millisecond

func newWaiter() (*waiter, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, err
	}
	w := &waiter{ep: ep, wake: wake}
	go w.loop()
	return w, nil
}

// wait hands s, started, to the waiter and returns when it is done.
func (w *waiter) wait(s *sender) {
	if s.done {
		return
	}
	s.finished = make(chan struct{})
	w.mu.Lock()
	w.added = append(w.added, s)
	w.mu.Unlock()
	w.poke()
	<-s.finished
}

// close stops the waiter once its transfers are done (Shutdown waits for
// them first).
func (w *waiter) close() {
	w.stop.Store(true)
	w.poke()
}

func (w *waiter) poke() {
	one := [8]byte{1}
	unix.Write(w.wake, one[:])
}

func (w *waiter) loop() {
	defer unix.Close(w.ep)
	defer unix.Close(w.wake)
	senders := map[int32]*sender{} // by socket
	events := make([]unix.EpollEvent, 128)
	next := time.Now().Add(scanEvery) // the next look for timeouts
	for {
		timeout := -1 // nothing to time out: sleep until woken
		if len(senders) > 0 {
			timeout = max(int((time.Until(next)+time.Millisecond-1)/time.Millisecond), 0)
		}
		n, err := unix.EpollWait(w.ep, events, timeout)
		if err != nil && err != unix.EINTR {
			n = 0 // cannot happen with a valid set; the scan still times transfers out
			time.Sleep(scanEvery)
		}
		for _, e := range events[:max(n, 0)] {
			if e.Fd == int32(w.wake) {
				var b [8]byte
				unix.Read(w.wake, b[:])
				if w.stop.Load() && len(senders) == 0 {
					return
				}
				w.take(senders)
				continue
			}
			s := senders[e.Fd]
			if s == nil {
				continue
			}
			sk := s.t.sock
			if sk.closed.Load() {
				s.fail(errClosed)
			} else {
				n, from, errno := sk.recvNow(s.t.rbuf)
				switch errno {
				case 0:
					s.packet(s.t.rbuf[:n], from)
				case unix.EAGAIN:
				default:
					s.fail(errno)
				}
			}
			if s.done {
				w.release(senders, s)
			}
		}
		if now := time.Now(); !now.Before(next) {
			for _, s := range senders {
				switch {
				case s.t.sock.closed.Load():
					s.fail(errClosed)
				case !now.Before(s.deadline):
					s.expire()
				}
				if s.done {
					w.release(senders, s)
				}
			}
			next = now.Add(scanEvery)
		}
	}
}

// take adds the transfers handed over to the set. An ACK that came before
// is reported at once: the set is level-triggered.
func (w *waiter) take(senders map[int32]*sender) {
	w.mu.Lock()
	added := w.added
	w.added = nil
	w.mu.Unlock()
	for _, s := range added {
		fd := int32(s.t.sock.fd)
		if err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, int(fd), &unix.EpollEvent{Events: unix.EPOLLIN, Fd: fd}); err != nil {
			s.fail(err)
			close(s.finished)
			continue
		}
		senders[fd] = s
	}
}

// release lets go of a done transfer: out of the set before its
// goroutine closes the socket, whose number could then be reused.
func (w *waiter) release(senders map[int32]*sender, s *sender) {
	fd := int32(s.t.sock.fd)
	unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, int(fd), nil)
	delete(senders, fd)
	close(s.finished)
}
