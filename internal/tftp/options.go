package tftp

import (
	"strconv"
	"time"
)

// Protocol bounds from the RFCs.
const (
	defaultBlockSize = 512   // RFC 1350
	minBlockSize     = 8     // RFC 2348
	maxBlockSize     = 65464 // RFC 2348
	maxWindowSize    = 65535 // RFC 7440
	headerOverhead   = 32    // IPv4 20 + UDP 8 + TFTP 4: blksize = MTU - 32 fills one frame
	headerOverhead6  = 52    // IPv6 40 + UDP 8 + TFTP 4
	ethernetMTU      = 1500  // assumed when the interface is unknown

	// maxWindowBytes bounds one window's data. A window arrives as one
	// burst, and a burst larger than the client's socket buffer (Linux's
	// default is 208 KiB, which holds only three 64 KiB datagrams) loses
	// its tail every time: atftp at blksize 65464 and windowsize 8 stalls.
	// Clients expect exactly the window they negotiated, so the server
	// negotiates a smaller one instead (RFC 7440 lets it). 1468 × 64 fits.
	maxWindowBytes = 128 << 10
)

// params is what one transfer runs with after negotiation.
type params struct {
	blksize int
	window  int
	timeout time.Duration // 0: the server's default
}

// negotiate answers a request's options (RFC 2347). It accepts only options
// the client asked for, clamps blksize and windowsize to the server's
// limits (windowsize also to maxWindowBytes of data), answers tsize with the
// real size (octet mode, known size only), and ignores anything unknown,
// out of range or given twice. The returned options form the OACK; none
// means the transfer starts with DATA 1.
func negotiate(opts []option, mode string, size int64, maxBlock, maxWindow int) (params, []option) {
	p := params{blksize: defaultBlockSize, window: 1}
	var oack []option
	windowAt := -1
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.name] {
			continue
		}
		seen[o.name] = true
		n, err := strconv.Atoi(o.value)
		if err != nil || len(o.value) > 10 {
			continue
		}
		switch o.name {
		case "blksize":
			if n < minBlockSize {
				continue
			}
			p.blksize = min(n, maxBlock, maxBlockSize)
			oack = append(oack, option{o.name, strconv.Itoa(p.blksize)})
		case "windowsize":
			if n < 1 || n > maxWindowSize {
				continue
			}
			p.window = min(n, maxWindow)
			windowAt = len(oack)
			oack = append(oack, option{o.name, ""}) // the value depends on blksize: below
		case "timeout":
			if n < 1 || n > 255 {
				continue
			}
			p.timeout = time.Duration(n) * time.Second
			oack = append(oack, option{o.name, strconv.Itoa(n)})
		case "tsize":
			// An empty file gets no tsize: curl rejects "tsize 0" in an OACK
			// as invalid and aborts, while every client copes without it.
			if mode != "octet" || size <= 0 || n != 0 {
				continue
			}
			oack = append(oack, option{o.name, strconv.FormatInt(size, 10)})
		}
	}
	if windowAt >= 0 {
		p.window = max(1, min(p.window, maxWindowBytes/p.blksize))
		oack[windowAt].value = strconv.Itoa(p.window)
	}
	return p, oack
}

// blockLimit is the largest blksize for an interface of the given MTU (0 if
// unknown), under the configured cap (0 if none): one block fills one
// frame without IP fragments, after the IPv4 or (v6) the IPv6 header. An
// unknown interface is taken for Ethernet.
func blockLimit(configured, mtu int, v6 bool) int {
	if configured > 0 {
		return min(configured, maxBlockSize)
	}
	if mtu <= 0 {
		mtu = ethernetMTU
	}
	overhead := headerOverhead
	if v6 {
		overhead = headerOverhead6
	}
	return max(min(mtu-overhead, maxBlockSize), minBlockSize)
}
