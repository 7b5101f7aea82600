package httpd

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"bootforge/internal/bootfs"
)

// acceptedConns is a listener that keeps the connections it accepted, so
// that a test can look at the server's side of them.
type acceptedConns struct {
	net.Listener
	conns chan net.Conn
}

func (l acceptedConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns <- c
	}
	return c, err
}

// A small file's response, header and body, leaves the server as one TCP
// segment: the header is not sent alone ahead of the sendfile(2) body.
// Measured with the server socket's own count of data segments sent.
func TestFileResponseIsOneSegment(t *testing.T) {
	root := t.TempDir()
	body := bytes.Repeat([]byte("bootforge "), 800) // 8000 bytes: well under loopback's MSS
	if err := os.WriteFile(filepath.Join(root, "menu.bin"), body, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := bootfs.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	s := New(dir, false, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lc := acceptedConns{ln, make(chan net.Conn, 1)}
	srv := NewHTTPServer(s.Handler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.Serve(lc)
	t.Cleanup(func() { srv.Close() })

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	const requests = 20
	var server *net.TCPConn
	for i := range requests {
		res, err := client.Get("http://" + ln.Addr().String() + "/menu.bin")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
			t.Fatalf("request %d: status %d, %d bytes, err %v", i, res.StatusCode, len(got), err)
		}
		if i == 0 {
			server = (<-lc.conns).(*net.TCPConn)
		}
	}
	rc, err := server.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var infoErr error
	rc.Control(func(fd uintptr) { info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if infoErr != nil {
		t.Fatal(infoErr)
	}
	if info.Data_segs_out != requests {
		t.Errorf("the server sent %d data segments for %d responses, want one each", info.Data_segs_out, requests)
	}
}
