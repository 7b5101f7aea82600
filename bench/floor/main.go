// Command floor is the least a Go file server does for wrk: a goroutine
// per connection on Go's netpoller, as bootforge's file listeners run,
// files opened and read once at start, a request line and headers found
// and nothing else looked at, a body over 64 KiB sent with sendfile(2),
// a smaller one in the header's write, and an access-log line per
// request, buffered as nginx's buffer=64k flush=1s.
//
// It is a yardstick, not a server: bench/floor.sh runs it beside nginx
// and bootforge to tell what Go's runtime costs from what bootforge's
// own work costs. It answers only GET of a file in -root by its name,
// on keep-alive connections, and closes a connection on anything it
// does not understand.
//
// -header chooses how a sendfile body's header goes out, to measure the
// choices a server has:
//
//   - more: sendmsg(2) with MSG_MORE, which holds it for the body;
//   - cork: TCP_CORK set before the header and cleared after the body, as
//     nginx's tcp_nopush, and bootforge for a body over 1 MiB (for any
//     body before its thirty-ninth session);
//   - corkfirst: TCP_CORK cleared once the body's first 64 KiB have gone,
//     as bootforge does now for a body of at most 1 MiB;
//   - none: a write(2) of its own, the header in a segment of its own.
//
// -reopen opens the file for each request (openat2 with RESOLVE_BENEATH,
// fstat, close), as bootforge and nginx do; -cachestat asks cachestat(2)
// before each sendfile, as bootforge does.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// file is one file of -root, opened at start.
type file struct {
	name string
	fd   int
	size int64
	hdr  []byte // the response's header
	mem  []byte // header and body, for a body of at most memMax
}

const memMax = 64 << 10

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	root := flag.String("root", ".", "the directory served")
	header := flag.String("header", "more", "how a sendfile body's header goes out: more, cork, corkfirst or none")
	reopen := flag.Bool("reopen", false, "open the file for each request")
	cachestat := flag.Bool("cachestat", false, "ask cachestat(2) before each sendfile")
	access := flag.String("access-log", "", "the access log (default: none)")
	flag.Parse()
	switch *header {
	case "more", "cork", "corkfirst", "none":
	default:
		log.Fatalf("floor: -header %q: more, cork, corkfirst or none", *header)
	}

	s := &server{header: *header, reopen: *reopen, cachestat: *cachestat, files: map[string]*file{}}
	if err := s.load(*root); err != nil {
		log.Fatal(err)
	}
	if *access != "" {
		f, err := os.OpenFile(*access, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		s.log = bufio.NewWriterSize(f, 64<<10)
		go func() {
			for range time.Tick(time.Second) {
				s.mu.Lock()
				s.log.Flush()
				s.mu.Unlock()
			}
		}()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go s.serve(c.(*net.TCPConn))
	}
}

type server struct {
	header            string
	reopen, cachestat bool
	rootFD            int
	files             map[string]*file // by request path

	mu  sync.Mutex
	log *bufio.Writer
}

func (s *server) load(root string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	s.rootFD = fd
	ents, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fd, err := unix.Open(filepath.Join(root, e.Name()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		f := &file{name: e.Name(), fd: fd, size: st.Size}
		f.hdr = fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", st.Size)
		if st.Size <= memMax {
			f.mem = make([]byte, len(f.hdr)+int(st.Size))
			copy(f.mem, f.hdr)
			if _, err := unix.Pread(fd, f.mem[len(f.hdr):], 0); err != nil {
				return err
			}
		}
		s.files["/"+e.Name()] = f
	}
	return nil
}

var notFound = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

// requestPath returns the path of the first whole request in b and the
// request's length, or 0 if b holds no whole request yet.
func requestPath(b []byte) (path string, n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return "", 0, nil
	}
	line, _, _ := bytes.Cut(b[:end], []byte("\r\n"))
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, _, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || string(method) != "GET" {
		return "", 0, errors.New("not a GET request line")
	}
	return string(target), end + 4, nil
}

func (s *server) serve(c *net.TCPConn) {
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	have := 0
	for {
		n, err := c.Read(buf[have:])
		if err != nil {
			return
		}
		have += n
		for {
			path, used, err := requestPath(buf[:have])
			if err != nil {
				return
			}
			if used == 0 {
				if have == len(buf) {
					return // headers larger than the buffer
				}
				break
			}
			have = copy(buf, buf[used:have])
			f := s.files[path]
			switch {
			case f == nil:
				_, err = c.Write(notFound)
			case f.mem != nil:
				_, err = c.Write(f.mem)
			default:
				err = s.sendBody(c, rc, f)
			}
			if err != nil {
				return
			}
			s.logRequest(c, path, f)
		}
	}
}

// sendBody sends f's header and then its body with sendfile(2).
func (s *server) sendBody(c *net.TCPConn, rc interface {
	Write(func(uintptr) bool) error
}, f *file) error {
	fd := f.fd
	if s.reopen {
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NOCTTY | unix.O_NONBLOCK | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_BENEATH}
		nfd, err := unix.Openat2(s.rootFD, f.name, &how)
		if err != nil {
			return err
		}
		defer unix.Close(nfd)
		var st unix.Stat_t
		if err := unix.Fstat(nfd, &st); err != nil {
			return err
		}
		fd = nfd
	}
	if s.cachestat {
		var st unix.Cachestat_t
		unix.Cachestat(uint(fd), &unix.CachestatRange{Len: uint64(f.size)}, &st, 0)
	}
	corked := s.header == "cork" || s.header == "corkfirst"
	if corked {
		cork(c, true)
	}
	flags := 0
	if s.header == "more" {
		flags = unix.MSG_MORE
	}
	var sent int
	var off int64
	var werr error
	err := rc.Write(func(sock uintptr) bool {
		for sent < len(f.hdr) {
			n, err := unix.SendmsgN(int(sock), f.hdr[sent:], nil, nil, flags)
			if err == unix.EAGAIN {
				return false
			}
			if err != nil {
				werr = err
				return true
			}
			sent += n
		}
		for off < f.size {
			n := int(f.size - off)
			if corked && s.header == "corkfirst" {
				n = min(n, 64<<10)
			}
			r, err := unix.Sendfile(int(sock), fd, &off, n)
			switch {
			case err == unix.EAGAIN:
				return false
			case err == unix.EINTR:
				continue
			case err != nil:
				werr = err
				return true
			case r == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
			if corked && s.header == "corkfirst" {
				unix.SetsockoptInt(int(sock), unix.IPPROTO_TCP, unix.TCP_CORK, 0)
				corked = false
			}
		}
		return true
	})
	if corked {
		cork(c, false)
	}
	if err != nil {
		return err
	}
	return werr
}

func cork(c *net.TCPConn, on bool) {
	v := 0
	if on {
		v = 1
	}
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v) })
	}
}

// logRequest writes nginx's combined format, with the fields floor knows.
func (s *server) logRequest(c *net.TCPConn, path string, f *file) {
	if s.log == nil {
		return
	}
	status, size := 404, int64(0)
	if f != nil {
		status, size = 200, f.size
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.WriteString(host)
	s.log.WriteString(" - - [")
	s.log.WriteString(time.Now().Format("02/Jan/2006:15:04:05 -0700"))
	s.log.WriteString(`] "GET `)
	s.log.WriteString(path)
	s.log.WriteString(` HTTP/1.1" `)
	s.log.WriteString(strconv.Itoa(status))
	s.log.WriteString(" ")
	s.log.WriteString(strconv.FormatInt(size, 10))
	s.log.WriteString(" \"-\" \"-\"\n")
}
