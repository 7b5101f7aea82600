package main

import "testing"

func TestRequestPath(t *testing.T) {
	for _, tt := range []struct {
		in   string
		path string
		n    int
		bad  bool
	}{
		{"GET /w8.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /next", "/w8.bin", 33, false},
		{"GET /w8.bin HTTP/1.1\r\nHost: x\r\n", "", 0, false}, // not whole yet
		{"POST /w8.bin HTTP/1.1\r\n\r\n", "", 0, true},
		{"GET\r\n\r\n", "", 0, true},
	} {
		path, n, err := requestPath([]byte(tt.in))
		if path != tt.path || n != tt.n || (err != nil) != tt.bad {
			t.Errorf("requestPath(%q) = %q, %d, %v; want %q, %d, error %v", tt.in, path, n, err, tt.path, tt.n, tt.bad)
		}
	}
}

// FuzzRequestPath: any bytes give a path and a length within them, or an
// error, never a panic.
func FuzzRequestPath(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET  \r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path, n, err := requestPath(b)
		if err == nil && (n < 0 || n > len(b) || len(path) > n) {
			t.Fatalf("requestPath(%q) = %q, %d", b, path, n)
		}
	})
}
