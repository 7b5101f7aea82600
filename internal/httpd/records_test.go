package httpd

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
)

// writesConn records each write that reaches it, and fails them all once
// fail is set.
type writesConn struct {
	net.Conn
	writes [][]byte
	fail   error
}

func (c *writesConn) Write(p []byte) (int, error) {
	if c.fail != nil {
		return 0, c.fail
	}
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// Outside gather and release every write goes through at once; between
// them, writes leave in order, in pieces of at most gatherSize, and what
// is left leaves with release. A write larger than the buffer passes
// through after what was gathered.
func TestRecordConnGathers(t *testing.T) {
	under := &writesConn{}
	c := &recordConn{Conn: under}
	c.Write([]byte("handshake"))
	if len(under.writes) != 1 {
		t.Fatalf("a write outside gather was held: %d writes", len(under.writes))
	}

	record := bytes.Repeat([]byte{'r'}, 16<<10+22) // a full TLS 1.3 record
	var want bytes.Buffer
	c.gather()
	for i := range 10 {
		record[0] = byte(i)
		if n, err := c.Write(record); n != len(record) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
		want.Write(record)
	}
	if len(under.writes) != 2 || len(under.writes[1]) != 8*len(record) {
		t.Fatalf("after ten records gathered: %d writes, want the handshake's and one of eight records", len(under.writes))
	}
	big := bytes.Repeat([]byte{'b'}, gatherSize+1)
	c.Write(big)
	want.Write(big)
	c.Write([]byte("tail"))
	want.WriteString("tail")
	if err := c.release(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("next"))
	want.WriteString("next")

	var got bytes.Buffer
	for i, w := range under.writes[1:] {
		if len(w) > gatherSize && !bytes.Equal(w, big) {
			t.Errorf("write %d is %d bytes, over gatherSize", i, len(w))
		}
		got.Write(w)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the bytes written differ from those given (%d against %d)", got.Len(), want.Len())
	}
	if n := len(under.writes); n != 6 {
		t.Errorf("%d writes, want 6: handshake, eight records, two records, the large one, tail, next", n)
	}
}

// A write that fails under a gathered one is reported by release.
func TestRecordConnReportsLateError(t *testing.T) {
	under := &writesConn{}
	c := &recordConn{Conn: under}
	c.gather()
	if _, err := c.Write([]byte("record")); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("connection reset")
	under.fail = broken
	if err := c.release(); !errors.Is(err, broken) {
		t.Fatalf("release: %v, want the failed write's error", err)
	}
}

// Over a real TLS listener, bodies arrive whole, one after another on one
// connection, and a range as well: written a record at a time while each
// is the only request in flight, and in gathered writes of many records
// while another is.
func TestTLSBodiesGatheredWithCompany(t *testing.T) {
	root := t.TempDir()
	content := bytes.Repeat([]byte("0123456789abcdef"), 3<<16+7) // 3 MiB and a bit: many pieces, the last one partial
	for i := range content {
		content[i] += byte(i / 4096)
	}
	writeFile(t, filepath.Join(root, "big"), content)
	site := startFast(t, root, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := LoadOrCreateCert("", "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := NewFastServer(site.srv.FastHandler(), log)
	go srv.Serve(TLSListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}, log, false))
	defer srv.Shutdown()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	get := func(rng string) (int, []byte) {
		req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/big", nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, body
	}
	fetch := func(want int64) {
		t.Helper()
		before := gathers.Load()
		for i := range 2 {
			if code, body := get(""); code != 200 || !bytes.Equal(body, content) {
				t.Fatalf("GET %d: status %d, %d bytes, identical %v", i, code, len(body), bytes.Equal(body, content))
			}
		}
		if code, body := get("bytes=100000-2999999"); code != 206 || !bytes.Equal(body, content[100000:3000000]) {
			t.Fatalf("range: status %d, %d bytes", code, len(body))
		}
		if got := gathers.Load() - before; got != want {
			t.Fatalf("%d of 3 bodies gathered, want %d", got, want)
		}
	}
	fetch(0)
	// Another request in flight, as the limits count it.
	release, refused := site.srv.take(netip.MustParseAddr("192.0.2.1"))
	if refused != "" {
		t.Fatal(refused)
	}
	fetch(3)
	release()
	fetch(0)
}
