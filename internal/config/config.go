// Package config holds bootforge's settings: their schema, their embedded
// defaults, strict YAML decoding and validation.
//
// Every setting has a default, so no file at all is a working
// configuration. An empty file is not: it is far more often a file cut
// short than a wish for the defaults, and the defaults move root. Errors
// name the offending key by its dotted path and, when it came from a file,
// the file and line, because an operator fixing a boot server at 3 a.m.
// should not have to guess which "timeout" is wrong. What is probably a
// mistake but can work (a kernel not copied yet) is a warning, with the
// same file, line and key, from Warnings.
//
// Precedence, lowest first: defaults, the YAML file, BOOTFORGE_* environment
// variables, command-line flags. The overlay of the last two is done by the
// CLI through Overrides, so that a SIGHUP reload re-applies them on top of the
// re-read file.
package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole configuration.
type Config struct {
	// DataDir holds state that must never be served: the TLS key, the store.
	DataDir string `yaml:"data_dir"`
	// Root is the directory served over TFTP and HTTP(S).
	Root string `yaml:"root"`
	// StoreSync is how durable a store write is before the answer that
	// depends on it leaves: "full" syncs to disk (survives power loss),
	// "normal" hands it to the OS (survives a crash of bootforge, as Kea's
	// memfile and dnsmasq's lease file do).
	StoreSync string `yaml:"store_sync"`
	// Store says which database holds the durable state (store.url).
	Store Store `yaml:"store"`
	// Allow lists the client subnets TFTP, HTTP(S) and DHCP answer, unless
	// a listener has its own list (tftp.allow, http.allow, dhcp.allow).
	// Empty: every client. See AllowList.
	Allow []Prefix `yaml:"allow"`

	Log   Log   `yaml:"log"`
	Audit Audit `yaml:"audit"`
	TFTP  TFTP  `yaml:"tftp"`
	HTTP  HTTP  `yaml:"http"`
	DHCP  DHCP  `yaml:"dhcp"`
	API   API   `yaml:"api"`

	Signing Signing `yaml:"signing"`

	Inventory Inventory `yaml:"inventory"`

	// Mirrors send some clients' image files to other bootforge servers
	// (mirrors.go).
	Mirrors []Mirror `yaml:"mirrors"`

	// from is where the settings came from. It is not a setting: it has no
	// yaml tag, so decoding, Keys and Changed pass it by.
	from origin
}

// origin says where settings came from, so that a warning found after the
// overrides names the file and line, or the variable or flag, that set the
// value it is about.
type origin struct {
	file  string            // the config file; empty without one
	lines map[string]int    // the line of each key the file sets
	by    map[string]string // key → the variable or flag that set it, over the file
}

// IsSet reports whether key was given in the file, the environment or a
// flag, rather than left to its default.
func (c Config) IsSet(key string) bool {
	_, inFile := c.from.lines[key]
	_, over := c.from.by[key]
	return inFile || over
}

// place stamps e with where its key was set: the variable or flag that set
// it, else the file and line (the nearest enclosing key the file sets).
func (c Config) place(e *Error) {
	if src, ok := c.from.by[e.Key]; ok {
		e.Msg = "from " + src + ": " + e.Msg
		return
	}
	e.File = c.from.file
	e.Line = lineOf(e.Key, c.from.lines)
}

// Log configures the service's own log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// API configures the management listener: /api/v1, /healthz, /readyz.
type API struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"` // keep it on the management network
	TLS     APITLS `yaml:"tls"`
	// MaxConnections bounds the API's open connections; past it a new
	// client waits to be accepted. A connection carries one request at a
	// time, so this bounds requests in flight too.
	MaxConnections int `yaml:"max_connections"`
	// MetricsAuth makes /metrics require a read token, as /api/v1 does.
	MetricsAuth bool `yaml:"metrics_auth"`
	// Allow lists the client subnets the API answers; others get 403.
	// Empty: every client. The top-level allow does not apply here.
	Allow []Prefix `yaml:"allow"`
}

// APITLS makes api.listen speak HTTPS only. Without Cert and Key it uses
// the self-signed certificate of http.tls, kept in DataDir/tls.
type APITLS struct {
	Enabled bool   `yaml:"enabled"`
	Cert    string `yaml:"cert"`
	Key     string `yaml:"key"`
}

// Audit configures the boot log.
type Audit struct {
	// Enabled records the boot log.
	Enabled bool `yaml:"enabled"`
	// Retention is how long boot-log events are kept; 0 keeps them forever.
	Retention Duration `yaml:"retention"`
}

// TFTP configures the TFTP server.
type TFTP struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// MaxBlockSize caps RFC 2348 blksize. 0 means: the receiving interface's
	// MTU minus 32 (IPv4 20 + UDP 8 + TFTP 4), never above 65464.
	MaxBlockSize int `yaml:"max_block_size"`
	// MaxWindowSize caps RFC 7440 windowsize.
	MaxWindowSize int `yaml:"max_window_size"`
	// Timeout is the first retransmission timeout when the client does not
	// negotiate one; it doubles on each retry.
	Timeout Duration `yaml:"timeout"`
	// Retries bounds retransmissions of one window before the transfer fails.
	Retries int `yaml:"retries"`
	// MaxTransfers bounds concurrent transfers in total, MaxPerClient per
	// client IP address.
	MaxTransfers int `yaml:"max_transfers"`
	MaxPerClient int `yaml:"max_per_client"`
	// CaseInsensitive lets "BOOT\BCD" find "boot/bcd", as Windows loaders expect.
	CaseInsensitive bool `yaml:"case_insensitive"`
	// Allow, if set, replaces the top-level allow for TFTP.
	Allow []Prefix `yaml:"allow"`
}

// HTTP configures the HTTP and HTTPS servers.
type HTTP struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	TLS     TLS    `yaml:"tls"`
	// AccessLog logs one line per request.
	AccessLog bool `yaml:"access_log"`
	// MaxRequests bounds requests in flight, over HTTP and HTTPS together;
	// past it a client gets 503 with Retry-After at once.
	MaxRequests int `yaml:"max_requests"`
	// MaxPerClient bounds requests in flight from one client address (0:
	// none), so that one host cannot hold every slot of MaxRequests.
	MaxPerClient int `yaml:"max_per_client"`
	// Allow, if set, replaces the top-level allow for HTTP and HTTPS
	// (every listener, the boot TLS one too).
	Allow []Prefix `yaml:"allow"`
}

// TLS configures HTTPS. Without Cert and Key a self-signed certificate is
// generated once and kept in DataDir/tls.
type TLS struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	Cert    string `yaml:"cert"`
	Key     string `yaml:"key"`
	// Boot turns on the boot TLS listener at BootListen, for UEFI HTTP
	// boot firmware: an RSA certificate issued by bootforge's CA, and RSA
	// key exchange allowed (no forward secrecy for clients that offer
	// nothing else). DHCP then hands arch 16/19 clients https:// loader URLs.
	Boot       bool   `yaml:"boot"`
	BootListen string `yaml:"boot_listen"`
	// IPXETrust declares that the iPXE served was built by the operator
	// with HTTPS and image trust, trusting bootforge's CA: its script URL
	// and menus use the boot TLS listener, and menus verify every kernel
	// and initrd (imgtrust, imgverify). Needs Boot and signing.enabled.
	IPXETrust bool `yaml:"ipxe_trust"`
}

// Signing configures detached CMS signatures of image manifests and
// generated menus.
type Signing struct {
	Enabled bool `yaml:"enabled"`
	// Dir holds the keys; empty means DataDir/keys. Never inside Root.
	Dir string `yaml:"dir"`
}

// TLSDir is where serve keeps the TLS certificates it makes itself (the
// self-signed one of http.tls and api.tls, the boot TLS one): data_dir/tls.
func (c Config) TLSDir() string { return filepath.Join(c.DataDir, "tls") }

// KeysDir is the signing keys directory: signing.dir, else data_dir/keys.
func (c Config) KeysDir() string {
	if c.Signing.Dir != "" {
		return c.Signing.Dir
	}
	return filepath.Join(c.DataDir, "keys")
}

// Store is the store section.
type Store struct {
	// URL is empty or "sqlite:PATH" for the embedded SQLite file (empty:
	// data_dir/bootforge.db), or "postgres://..." for a PostgreSQL
	// database that several servers share (BOOTFORGE_STORE_URL).
	URL string `yaml:"url"`
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		DataDir:   "/var/lib/bootforge",
		Root:      "/var/lib/bootforge/root",
		StoreSync: "full",
		Log:       Log{Level: "info", Format: "text"},
		Audit:     Audit{Enabled: true, Retention: Duration(90 * 24 * time.Hour)},
		TFTP: TFTP{
			Enabled:       true,
			Listen:        ":69",
			MaxBlockSize:  0,
			MaxWindowSize: 64,
			Timeout:       Duration(time.Second),
			Retries:       5,
			MaxTransfers:  1000,
			MaxPerClient:  16,
		},
		HTTP: HTTP{
			Enabled:      true,
			Listen:       ":8080",
			AccessLog:    true,
			MaxRequests:  1024,
			MaxPerClient: 32,
			TLS:          TLS{Enabled: true, Listen: ":8443", BootListen: ":4433"},
		},
		DHCP: defaultDHCP(),
		API:  API{Enabled: true, Listen: "127.0.0.1:9090", MaxConnections: 64},
	}
}

// Error is one problem with one key.
type Error struct {
	File string // empty when not from a file
	Line int    // 0 when unknown
	Key  string // dotted path, e.g. "tftp.max_window_size"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, so that one run shows them all.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Validate checks values that YAML types alone cannot.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Root == "" {
		bad("root", "must not be empty")
	}
	errs = append(errs, c.containment()...) // on resolved paths: contain.go
	switch c.StoreSync {
	case "full", "normal":
	default:
		bad("store_sync", "%q is not one of full, normal", c.StoreSync)
	}
	if u := c.Store.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") &&
		(!strings.HasPrefix(u, "sqlite:") || u == "sqlite:") {
		bad("store.url", "%q is neither sqlite:PATH nor postgres://...", u)
	}
	if c.Audit.Retention < 0 {
		bad("audit.retention", "%s is negative", c.Audit.Retention)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.TFTP.Enabled {
		checkAddr(bad, "tftp.listen", c.TFTP.Listen)
	}
	if b := c.TFTP.MaxBlockSize; b != 0 && (b < 8 || b > 65464) {
		bad("tftp.max_block_size", "%d is outside 8..65464 (0 means interface MTU - 32)", b)
	}
	if w := c.TFTP.MaxWindowSize; w < 1 || w > 65535 {
		bad("tftp.max_window_size", "%d is outside 1..65535", w)
	}
	if t := c.TFTP.Timeout.D(); t < 10*time.Millisecond || t > 255*time.Second {
		bad("tftp.timeout", "%s is outside 10ms..255s", t)
	}
	if r := c.TFTP.Retries; r < 1 || r > 100 {
		bad("tftp.retries", "%d is outside 1..100", r)
	}
	if c.TFTP.MaxTransfers < 1 {
		bad("tftp.max_transfers", "%d must be at least 1", c.TFTP.MaxTransfers)
	}
	if c.TFTP.MaxPerClient < 1 {
		bad("tftp.max_per_client", "%d must be at least 1", c.TFTP.MaxPerClient)
	}
	if c.HTTP.Enabled || (c.DHCP.Mode != "off" && c.DHCP.HTTPPort == 0) {
		checkAddr(bad, "http.listen", c.HTTP.Listen) // DHCP's URLs take its port
	}
	if c.API.Enabled {
		checkAddr(bad, "api.listen", c.API.Listen)
		if c.API.MaxConnections < 1 {
			bad("api.max_connections", "%d must be at least 1", c.API.MaxConnections)
		}
		if c.API.TLS.Enabled && (c.API.TLS.Cert == "") != (c.API.TLS.Key == "") {
			bad("api.tls.cert", "cert and key must be given together (or neither, for the self-signed certificate)")
		}
	}
	if c.HTTP.MaxPerClient < 0 {
		bad("http.max_per_client", "%d is negative (0: no bound)", c.HTTP.MaxPerClient)
	}
	if c.HTTP.MaxRequests < 1 {
		bad("http.max_requests", "%d must be at least 1", c.HTTP.MaxRequests)
	}
	if c.HTTP.TLS.Enabled {
		checkAddr(bad, "http.tls.listen", c.HTTP.TLS.Listen)
		if (c.HTTP.TLS.Cert == "") != (c.HTTP.TLS.Key == "") {
			bad("http.tls.cert", "cert and key must be given together (or neither, for a self-signed certificate)")
		}
	}
	if c.HTTP.TLS.Boot {
		checkAddr(bad, "http.tls.boot_listen", c.HTTP.TLS.BootListen)
	}
	if c.HTTP.TLS.IPXETrust && (!c.HTTP.TLS.Boot || !c.Signing.Enabled) {
		bad("http.tls.ipxe_trust", "needs http.tls.boot (iPXE fetches over its listener) and signing.enabled (what iPXE verifies)")
	}
	c.DHCP.validate(bad)
	validateMirrors(c.Mirrors, bad)
	for i, p := range c.Inventory.Profiles {
		perrs, _ := checkProfile(nil, p)
		for _, e := range perrs {
			bad(fmt.Sprintf("inventory.profiles[%d].%s", i, e.Key), "%s", e.Msg)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// URLPort is the port of the HTTP URLs that DHCP hands to iPXE and UEFI
// HTTP clients: dhcp.http_port, else the port of http.listen (which
// Validate checks whenever DHCP is on and takes it); 0 if neither names one.
func (c Config) URLPort() int {
	if c.DHCP.HTTPPort != 0 {
		return c.DHCP.HTTPPort
	}
	_, p, err := net.SplitHostPort(c.HTTP.Listen)
	if err != nil {
		return 0
	}
	port, err := net.LookupPort("tcp", p)
	if err != nil {
		return 0
	}
	return port
}

// BootURLPort is the port of the https:// URLs for UEFI HTTP boot (and a
// trusting iPXE): the port of http.tls.boot_listen; 0 when the boot TLS
// listener is off.
func (c Config) BootURLPort() int {
	if !c.HTTP.TLS.Boot {
		return 0
	}
	_, p, err := net.SplitHostPort(c.HTTP.TLS.BootListen)
	if err != nil {
		return 0
	}
	port, err := net.LookupPort("tcp", p)
	if err != nil {
		return 0
	}
	return port
}

func checkAddr(bad func(string, string, ...any), key, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		bad(key, "%q is not host:port: %v", addr, err)
		return
	}
	if host != "" && net.ParseIP(host) == nil {
		bad(key, "%q: host must be an IP address or empty", addr)
	}
	if _, err := net.LookupPort("udp", port); err != nil || port == "" {
		bad(key, "%q: bad port", addr)
	}
}

// within reports whether path is below dir. "dir/..state" is below dir:
// only a first component of exactly ".." leaves it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Duration is a time.Duration written as "1s", "250ms" in YAML.
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 1s or 250ms", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
