package tftp

import (
	"container/heap"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// loop waits for the ACKs of many transfers at once and answers each
// inline, as dnsmasq does: one goroutine, one epoll set of the transfers'
// non-blocking sockets, registered for input only, and a heap of their
// deadlines. An ACK costs a recvfrom and the next window's send, and a
// batch of ACKs one epoll_wait.
//
// It replaced the netpoller for the transfers beyond the first few
// (sock). Through the netpoller each transfer's goroutine parked and woke
// for every ACK, a recvfrom that found nothing came before each wait, and
// each socket was registered for output too, so every block sent woke
// the epoll set once more when the kernel freed its buffer: in a storm of
// 500 lockstep transfers bootforge spent about 15 µs of CPU per block
// against dnsmasq's 10 (bench/pxestorm.md).
type loop struct {
	epfd int
	wake int // an eventfd: new transfers are waiting in added

	mu     sync.Mutex
	added  []*looped
	closed bool

	// The loop goroutine's own.
	byFd     map[int32]*looped
	timers   timerHeap
	buf      []byte
	finished chan struct{}
}

// looped is a transfer in the loop.
type looped struct {
	s     *sender
	fd    int32
	done  chan error // its end: nil once the final block was acknowledged
	index int        // in the timer heap
}

// loop returns the server's loop, started with the first transfer that
// needs it.
func (s *Server) loop() *loop {
	s.loopOnce.Do(func() {
		l, err := newLoop()
		if err != nil {
			s.loopErr = err
			return
		}
		s.acks = l
		go l.serve()
	})
	return s.acks
}

func newLoop() (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	return &loop{epfd: epfd, wake: wake, byFd: map[int32]*looped{}, buf: make([]byte, 1024), finished: make(chan struct{})}, nil
}

// run hands s, started, to the loop and returns when its transfer ends.
func (l *loop) run(s *sender) error {
	if l == nil {
		return fmt.Errorf("no loop for the transfer: %v", s.t.srv.loopErr)
	}
	t := &looped{s: s, fd: int32(s.t.sock.fd), done: make(chan error, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	l.added = append(l.added, t)
	l.mu.Unlock()
	l.poke()
	return <-t.done
}

// poke wakes the loop's wait.
func (l *loop) poke() {
	one := [8]byte{1}
	unix.Write(l.wake, one[:])
}

// close stops the loop once the transfers in it have ended (the server
// aborts them first).
func (l *loop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.poke()
	<-l.finished
}

// serve is the loop.
func (l *loop) serve() {
	defer close(l.finished)
	defer unix.Close(l.epfd)
	defer unix.Close(l.wake)
	events := make([]unix.EpollEvent, 128)
	for {
		wait := -1
		if len(l.timers) > 0 {
			// Round up: a wait rounded down to 0 would spin until the
			// deadline.
			wait = int((time.Until(l.timers[0].s.deadline) + time.Millisecond - 1) / time.Millisecond)
			wait = max(wait, 0)
		}
		n, err := unix.EpollWait(l.epfd, events, wait)
		if err != nil && err != unix.EINTR {
			l.failAll(err)
			return
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == l.wake {
				if !l.admit() {
					return
				}
				continue
			}
			if t := l.byFd[ev.Fd]; t != nil {
				l.readable(t)
			}
		}
		now := time.Now()
		for len(l.timers) > 0 && !l.timers[0].s.deadline.After(now) {
			t := l.timers[0]
			if err := t.s.timeout(); err != nil {
				l.finish(t, err)
				continue
			}
			heap.Fix(&l.timers, t.index)
		}
	}
}

// admit takes the transfers added since the last wake. It returns false
// once the loop is closed and empty.
func (l *loop) admit() bool {
	var b [8]byte
	unix.Read(l.wake, b[:])
	l.mu.Lock()
	added, closed := l.added, l.closed
	l.added = nil
	l.mu.Unlock()
	for _, t := range added {
		// Level-triggered: an ACK that came before the socket was added
		// is reported at once.
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: t.fd}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(t.fd), &ev); err != nil {
			t.done <- err
			continue
		}
		l.byFd[t.fd] = t
		heap.Push(&l.timers, t)
	}
	return !closed || len(l.byFd) > 0
}

// readable reads one packet from t's client. The set is level-triggered,
// so a packet left waiting is reported again by the next epoll_wait;
// reading on until the socket is empty would cost a recvfrom that finds
// nothing for nearly every ACK.
func (l *loop) readable(t *looped) {
	n, from, ok, err := t.s.t.sock.recvNow(l.buf)
	if err == nil && !ok {
		return
	}
	done := err != nil
	if !done {
		done, err = t.s.packet(l.buf[:n], from)
	}
	if done || err != nil {
		l.finish(t, err)
		return
	}
	heap.Fix(&l.timers, t.index) // an answer moved its deadline
}

// finish takes t out of the loop and ends its transfer with err.
func (l *loop) finish(t *looped, err error) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(t.fd), nil)
	delete(l.byFd, t.fd)
	heap.Remove(&l.timers, t.index)
	t.done <- err
}

// failAll ends every transfer in the loop with err.
func (l *loop) failAll(err error) {
	for _, t := range l.byFd {
		l.finish(t, err)
	}
	l.mu.Lock()
	l.closed = true
	added := l.added
	l.added = nil
	l.mu.Unlock()
	for _, t := range added {
		t.done <- err
	}
}

// timerHeap orders the loop's transfers by deadline (container/heap).
type timerHeap []*looped

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].s.deadline.Before(h[j].s.deadline) }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*looped)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
