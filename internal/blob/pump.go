package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	// chunkSize is the unit of reading, hashing and writing: large enough
	// that the per-call cost vanishes next to hashing a chunk.
	chunkSize = 1 << 20
	// chunks in flight between the reading and the second stage.
	chunks = 4
	// writebackWindow is how much an import writes before it asks the
	// kernel to start writing it out, so that the final sync finds little
	// left to do and the disk works while the source is still being hashed.
	writebackWindow = 32 << 20
)

// pump reads src in chunks. Each chunk goes to first on this goroutine, then
// to second on another, so that reading (and first) overlap with second.
// Buffers are reused: neither stage may keep a chunk. It returns the bytes
// read, and the first error of reading, either stage, or ctx.
func pump(ctx context.Context, src io.Reader, first, second func([]byte) (int, error)) (int64, error) {
	free := make(chan []byte, chunks)
	for range chunks {
		free <- make([]byte, chunkSize)
	}
	work := make(chan []byte, chunks)
	var (
		mu      sync.Mutex
		stopped error // second's error, once it failed
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return stopped
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range work {
			if failed() == nil {
				if _, err := second(b); err != nil {
					mu.Lock()
					stopped = err
					mu.Unlock()
				}
			}
			free <- b[:cap(b)]
		}
	}()

	var total int64
	err := func() error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			if failed() != nil {
				return nil
			}
			b := <-free
			n, rerr := fill(src, b)
			if rerr != nil && rerr != io.EOF {
				// A short chunk before an error is not content: a
				// transfer that broke off is no shorter file.
				free <- b
				return fmt.Errorf("reading source after %d bytes: %w", total+int64(n), rerr)
			}
			if n > 0 {
				if first != nil {
					if _, err := first(b[:n]); err != nil {
						return err
					}
				}
				total += int64(n)
				work <- b[:n]
			} else {
				free <- b
			}
			if rerr == io.EOF {
				return nil
			}
		}
	}()
	close(work)
	<-done
	if err == nil {
		err = failed()
	}
	if err == nil {
		err = ctx.Err()
	}
	return total, err
}

// fill reads into b until it is full or src ends. Unlike io.ReadFull, it
// tells the end of the source (io.EOF) from a source that fails with
// io.ErrUnexpectedEOF, as an HTTP body cut short does.
func fill(src io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := src.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// writeback writes a file front to back and keeps the kernel writing it
// out as it grows: without it, gigabytes of dirty pages wait for the final
// fsync, which then takes as long as the copy did. What is on disk already
// is dropped from the page cache as it goes: importing a 5 GiB ISO must not
// push out the files the server is serving, and reusing a few windows'
// worth of pages is cheaper than finding gigabytes of new ones.
type writeback struct {
	f       *os.File
	off     int64 // bytes written
	started int64 // bytes whose writeback was started
}

func newWriteback(f *os.File) *writeback { return &writeback{f: f} }

func (w *writeback) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.off += int64(n)
	if err != nil {
		return n, fmt.Errorf("blob store: write: %w", err)
	}
	if w.off-w.started < writebackWindow {
		return n, nil
	}
	fd := int(w.f.Fd())
	// Start writing this window out, without waiting for it.
	if err := syncRange(fd, w.started, w.off-w.started, unix.SYNC_FILE_RANGE_WRITE); err != nil {
		return n, err
	}
	// Drop what came before it. This does not wait either: the pages
	// still being written stay, for a later call or the final drop.
	unix.Fadvise(fd, 0, w.started, unix.FADV_DONTNEED)
	w.started = w.off
	return n, nil
}

// drop drops the whole file from the page cache, once it is synced.
func (w *writeback) drop() {
	unix.Fadvise(int(w.f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// syncRange is sync_file_range(2). A filesystem that cannot do it is no
// error: the final fsync does it all.
func syncRange(fd int, off, n int64, flags int) error {
	err := unix.SyncFileRange(fd, off, n, flags)
	if err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ESPIPE) {
		return fmt.Errorf("blob store: writeback: %w", err)
	}
	return nil
}
