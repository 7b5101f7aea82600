package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Item is one line of the checklist.
type Item struct {
	Name   string `json:"name"`
	Status string `json:"status"` // pass, fail, skip, warn
	Detail string `json:"detail"`
}

// Pass, Fail and Skip make items.
func Pass(name, format string, args ...any) Item {
	return Item{Name: name, Status: "pass", Detail: fmt.Sprintf(format, args...)}
}

// Fail makes a failed item.
func Fail(name, format string, args ...any) Item {
	return Item{Name: name, Status: "fail", Detail: fmt.Sprintf(format, args...)}
}

// Skip makes an item that could not be checked here.
func Skip(name, format string, args ...any) Item {
	return Item{Name: name, Status: "skip", Detail: fmt.Sprintf(format, args...)}
}

// Warn makes an item that passes with a risk the operator should remove:
// it does not fail the checklist, as it does not stop serve.
func Warn(name, format string, args ...any) Item {
	return Item{Name: name, Status: "warn", Detail: fmt.Sprintf(format, args...)}
}

// Failed reports whether any item failed.
func Failed(items []Item) bool {
	for _, it := range items {
		if it.Status == "fail" {
			return true
		}
	}
	return false
}

// TFTPGet fetches a file over TFTP (RFC 1350, octet, lockstep) and returns
// its size. It is the smallest client that proves the server answers; the
// end-to-end tests use atftp, tftp-hpa, curl and busybox for the protocol.
func TFTPGet(addr, file string, timeout time.Duration) (int64, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return 0, err
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	rrq := append([]byte{0, 1}, file...)
	rrq = append(rrq, 0)
	rrq = append(rrq, "octet"...)
	rrq = append(rrq, 0)
	if _, err := conn.WriteToUDP(rrq, raddr); err != nil {
		return 0, err
	}
	buf := make([]byte, 4+512)
	var total int64
	expect := uint16(1)
	for {
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, from, err := conn.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Said without the local socket ("read udp [::]:41234: i/o timeout").
			return total, fmt.Errorf("no answer from %s within %s (%w)", addr, timeout, os.ErrDeadlineExceeded)
		}
		if err != nil {
			return total, fmt.Errorf("no answer from %s: %w", addr, err)
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(buf) {
		case 5:
			msg := strings.TrimRight(string(buf[4:n]), "\x00")
			return total, TFTPError{Code: binary.BigEndian.Uint16(buf[2:]), Msg: msg}
		case 3:
			if binary.BigEndian.Uint16(buf[2:]) != expect {
				continue
			}
			total += int64(n - 4)
			ack := []byte{0, 4, buf[2], buf[3]}
			conn.WriteToUDP(ack, from)
			if n-4 < 512 {
				return total, nil
			}
			expect++
		}
	}
}

// TFTPError is an ERROR packet from the server: the checklist tells the
// operator what to do by its code (1: the file is not in the root).
type TFTPError struct {
	Code uint16
	Msg  string
}

// TFTPNotFound is the code of "file not found" (RFC 1350).
const TFTPNotFound = 1

func (e TFTPError) Error() string { return fmt.Sprintf("ERROR %d: %s", e.Code, e.Msg) }

// HTTPGet fetches a URL and returns status and body (at most 1 MiB).
func HTTPGet(url string, timeout time.Duration) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, string(body), nil
}
