package main

import (
	"context"
	"testing"
	"time"
)

func TestRRQ(t *testing.T) {
	got := string(rrq("a.efi", "blksize", "1468", "tsize", "0"))
	want := "\x00\x01a.efi\x00octet\x00blksize\x001468\x00tsize\x000\x00"
	if got != want {
		t.Fatalf("rrq = %q, want %q", got, want)
	}
}

func TestParseOACK(t *testing.T) {
	m, err := parseOACK([]byte("\x00\x06BLKSIZE\x001468\x00tsize\x001048576\x00"))
	if err != nil || m["blksize"] != "1468" || m["tsize"] != "1048576" {
		t.Fatalf("parseOACK = %v, %v", m, err)
	}
	for _, bad := range []string{"\x00\x03x\x00", "\x00\x06blksize\x00", "\x00\x06blksize\x001468"} {
		if _, err := parseOACK([]byte(bad)); err == nil {
			t.Errorf("parseOACK(%q): no error", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, mx := summarize(d)
	if p50 != 50 || p99 != 99 || mx != 100 {
		t.Fatalf("summarize = %v %v %v", p50, p99, mx)
	}
}

func TestShortErr(t *testing.T) {
	got := shortErr(errorString("read udp 198.19.0.1:40123: i/o timeout"))
	if got != "read udp 198.19.0.1:*: i/o timeout" {
		t.Fatalf("shortErr = %q", got)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestBarrier(t *testing.T) {
	b := newBarrier(3)
	b.leave() // one client dropped out
	done := make(chan bool, 2)
	go func() { done <- b.arrive(context.Background()) }()
	select {
	case <-done:
		t.Fatal("barrier opened with one of two clients")
	case <-time.After(20 * time.Millisecond):
	}
	go func() { done <- b.arrive(context.Background()) }()
	for range 2 {
		if !<-done {
			t.Fatal("arrive = false")
		}
	}
}

func TestMedMinMax(t *testing.T) {
	if m, lo, hi := medMinMax([]float64{5, 1, 3, 2}); m != 2.5 || lo != 1 || hi != 5 {
		t.Fatalf("medMinMax = %v %v %v", m, lo, hi)
	}
	if got := mmm([]float64{3, 1, 2}, 1); got != "2.0 (1.0–3.0)" {
		t.Fatalf("mmm = %q", got)
	}
}
