package tftp

import (
	"strconv"
	"testing"
	"time"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name      string
		opts      []option
		mode      string
		size      int64
		maxBlock  int
		maxWindow int
		want      params
		wantOACK  []option
	}{
		{"no options", nil, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"blksize accepted", []option{{"blksize", "1428"}}, "octet", 100, 1468, 64,
			params{1428, 1, 0}, []option{{"blksize", "1428"}}},
		{"blksize clamped to interface", []option{{"blksize", "65464"}}, "octet", 100, 1468, 64,
			params{1468, 1, 0}, []option{{"blksize", "1468"}}},
		{"blksize 70000 clamped to RFC max", []option{{"blksize", "70000"}}, "octet", 100, 65464, 64,
			params{65464, 1, 0}, []option{{"blksize", "65464"}}},
		{"blksize 0 ignored", []option{{"blksize", "0"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"blksize 7 ignored", []option{{"blksize", "7"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"blksize 8 accepted", []option{{"blksize", "8"}}, "octet", 100, 1468, 64,
			params{8, 1, 0}, []option{{"blksize", "8"}}},
		{"blksize garbage ignored", []option{{"blksize", "12ab"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"blksize negative ignored", []option{{"blksize", "-512"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"windowsize clamped", []option{{"windowsize", "1000"}}, "octet", 100, 1468, 64,
			params{512, 64, 0}, []option{{"windowsize", "64"}}},
		{"windowsize 0 ignored", []option{{"windowsize", "0"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"windowsize 65536 ignored", []option{{"windowsize", "65536"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"window bytes bounded: 65464 x 64", []option{{"windowsize", "64"}, {"blksize", "65464"}}, "octet", 100, 65464, 64,
			params{65464, 2, 0}, []option{{"windowsize", "2"}, {"blksize", "65464"}}},
		{"window bytes bounded: 8192 x 64", []option{{"blksize", "8192"}, {"windowsize", "64"}}, "octet", 100, 65464, 64,
			params{8192, 16, 0}, []option{{"blksize", "8192"}, {"windowsize", "16"}}},
		{"timeout", []option{{"timeout", "3"}}, "octet", 100, 1468, 64,
			params{512, 1, 3 * time.Second}, []option{{"timeout", "3"}}},
		{"timeout 0 ignored", []option{{"timeout", "0"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"timeout 256 ignored", []option{{"timeout", "256"}}, "octet", 100, 1468, 64, params{512, 1, 0}, nil},
		{"tsize answered", []option{{"tsize", "0"}}, "octet", 12345, 1468, 64,
			params{512, 1, 0}, []option{{"tsize", "12345"}}},
		{"tsize not in netascii", []option{{"tsize", "0"}}, "netascii", 12345, 1468, 64, params{512, 1, 0}, nil},
		{"tsize not for empty file", []option{{"tsize", "0"}}, "octet", 0, 1468, 64, params{512, 1, 0}, nil},
		{"tsize not for unknown size", []option{{"tsize", "0"}}, "octet", -1, 1468, 64, params{512, 1, 0}, nil},
		{"unknown option ignored", []option{{"multicast", ""}, {"blksize", "1024"}}, "octet", 1, 1468, 64,
			params{1024, 1, 0}, []option{{"blksize", "1024"}}},
		{"duplicate: first wins", []option{{"blksize", "1024"}, {"blksize", "8"}}, "octet", 1, 1468, 64,
			params{1024, 1, 0}, []option{{"blksize", "1024"}}},
		{"order kept", []option{{"tsize", "0"}, {"windowsize", "16"}, {"blksize", "1468"}}, "octet", 7, 1468, 64,
			params{1468, 16, 0}, []option{{"tsize", "7"}, {"windowsize", "16"}, {"blksize", "1468"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, oack := negotiate(tt.opts, tt.mode, tt.size, tt.maxBlock, tt.maxWindow)
			if got != tt.want {
				t.Errorf("params = %+v, want %+v", got, tt.want)
			}
			if len(oack) != len(tt.wantOACK) {
				t.Fatalf("oack = %v, want %v", oack, tt.wantOACK)
			}
			for i := range oack {
				if oack[i] != tt.wantOACK[i] {
					t.Fatalf("oack = %v, want %v", oack, tt.wantOACK)
				}
			}
		})
	}
}

func TestBlockLimit(t *testing.T) {
	tests := []struct {
		configured, mtu int
		v6              bool
		want            int
	}{
		{0, 1500, false, 1468},
		{0, 9000, false, 8968},
		{0, 65536, false, 65464},    // loopback
		{0, 0, false, 1468},         // unknown interface: one Ethernet frame
		{1024, 1500, false, 1024},   // configured wins
		{8192, 1500, false, 8192},   // even above the MTU: the operator said so
		{99999, 1500, false, 65464}, // never above the RFC
		// IPv6: MTU - 40 - 8 - 4
		{0, 1500, true, 1448},
		{0, 1280, true, 1228}, // IPv6's minimum MTU
		{0, 9000, true, 8948},
		{0, 65536, true, 65464},  // ::1
		{0, 0, true, 1448},       // unknown interface: one Ethernet frame
		{1468, 1500, true, 1468}, // configured wins over IPv6 too
		{0, 40, true, minBlockSize},
	}
	for _, tt := range tests {
		if got := blockLimit(tt.configured, tt.mtu, tt.v6); got != tt.want {
			t.Errorf("blockLimit(%d, %d, v6=%v) = %d, want %d", tt.configured, tt.mtu, tt.v6, got, tt.want)
		}
	}
}

// FuzzNegotiate checks negotiation never breaks the RFC bounds or the
// server's limits, and only answers options the client sent.
func FuzzNegotiate(f *testing.F) {
	f.Add("blksize", "1468", "windowsize", "64", "octet", int64(1000), 1468, 64)
	f.Add("tsize", "0", "timeout", "255", "netascii", int64(0), 65464, 1)
	f.Add("blksize", "99999999999", "windowsize", "-1", "octet", int64(-1), 8, 65535)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, mode string, size int64, maxBlock, maxWindow int) {
		if maxBlock < minBlockSize || maxBlock > maxBlockSize || maxWindow < 1 || maxWindow > maxWindowSize {
			return
		}
		opts := []option{{n1, v1}, {n2, v2}}
		p, oack := negotiate(opts, mode, size, maxBlock, maxWindow)
		// Without a blksize option RFC 1350's 512 stands, whatever the limit.
		if p.blksize != defaultBlockSize && (p.blksize < minBlockSize || p.blksize > maxBlock) {
			t.Fatalf("blksize %d outside %d..%d", p.blksize, minBlockSize, maxBlock)
		}
		if p.window < 1 || p.window > maxWindow {
			t.Fatalf("windowsize %d outside 1..%d", p.window, maxWindow)
		}
		if p.timeout < 0 || p.timeout > 255*time.Second {
			t.Fatalf("timeout %s", p.timeout)
		}
		for _, o := range oack {
			if o.name != n1 && o.name != n2 {
				t.Fatalf("OACK has %q, which the client did not ask for", o.name)
			}
			if _, err := strconv.ParseInt(o.value, 10, 64); err != nil {
				t.Fatalf("OACK value %q is not a number", o.value)
			}
		}
	})
}
