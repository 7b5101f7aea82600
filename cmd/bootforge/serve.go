package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"
	"golang.org/x/sys/unix"

	"bootforge/internal/api"
	"bootforge/internal/audit"
	"bootforge/internal/authenticode"
	"bootforge/internal/boot"
	"bootforge/internal/bootfs"
	"bootforge/internal/catalog"
	"bootforge/internal/check"
	"bootforge/internal/config"
	"bootforge/internal/dhcp"
	"bootforge/internal/dhcp6"
	"bootforge/internal/heapfloor"
	"bootforge/internal/httpd"
	"bootforge/internal/inventory"
	"bootforge/internal/keys"
	"bootforge/internal/logbuf"
	"bootforge/internal/menufs"
	"bootforge/internal/metrics"
	"bootforge/internal/mirror"
	"bootforge/internal/store"
	"bootforge/internal/tftp"
)

// shutdownGrace is how long SIGTERM waits for transfers in flight.
const shutdownGrace = 30 * time.Second

// heapHeadroom is how far the heap may grow past what the last garbage
// collection left before the next one starts (internal/heapfloor): at
// GOGC's 100 a live heap of a few MiB is collected many times a second
// under load. GOGC, if set, wins; GOMEMLIMIT caps it.
const heapHeadroom = 32 << 20

// serveFlags maps each serve flag to its config key.
var serveFlags = []struct{ name, key, usage string }{
	{"root", "root", "directory served over TFTP and HTTP"},
	{"data-dir", "data_dir", "directory for state (TLS key, store); never served"},
	{"tftp-addr", "tftp.listen", "TFTP listen address (UDP host:port)"},
	{"http-addr", "http.listen", "HTTP listen address (host:port)"},
	{"https-addr", "http.tls.listen", "HTTPS listen address (host:port)"},
	{"api-addr", "api.listen", "management API listen address (host:port); keep it off the boot network"},
}

func newServeCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the boot services",
		Long: `Run TFTP, HTTP and HTTPS on the configured addresses.

Settings come from the embedded defaults, then the config file (--config),
then BOOTFORGE_* environment variables, then these flags. SIGHUP re-reads
them all; a bad config is refused and the running one kept. SIGTERM or
SIGINT stops accepting work and waits up to 30 s for transfers in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// serve logs the config's warnings, variables included,
			// at start and on each reload (services.warn).
			load := func() (config.Config, error) { return layerConfig(cmd, g) }
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serve(ctx, load, g.config)
		},
	}
	for _, f := range serveFlags {
		cmd.Flags().String(f.name, "", f.usage+" (env "+config.EnvName(f.key)+")")
	}
	return cmd
}

// loadConfig is the config of every command but serve (see layerConfig),
// and it warns, as serve does, about each BOOTFORGE_* variable that names
// no setting: a typo such as BOOTFORGE_DATADIR is otherwise ignored
// without a word, and the command works on another data_dir than meant.
func loadConfig(cmd *cobra.Command, g *globalFlags) (config.Config, error) {
	cfg, err := layerConfig(cmd, g)
	if err != nil {
		return cfg, err
	}
	for _, w := range config.EnvWarnings() { // the others (files not in root, ...) are serve's business
		g.warn(cmd.ErrOrStderr(), configWarning(w))
	}
	return cfg, nil
}

// configWarning is how a command and serve word a config warning.
func configWarning(w *config.Error) string { return "config: " + w.Error() }

// layerConfig layers defaults, file, environment and flags, and validates
// the result once.
func layerConfig(cmd *cobra.Command, g *globalFlags) (config.Config, error) {
	overrides := envOverrides()
	for _, f := range serveFlags {
		if fl := cmd.Flags().Lookup(f.name); fl != nil && fl.Changed {
			overrides = append(overrides, config.Override{Key: f.key, Value: fl.Value.String(), Source: "--" + f.name})
		}
	}
	if g.logFormat != "" {
		overrides = append(overrides, config.Override{Key: "log.format", Value: g.logFormat, Source: "--log-format"})
	}
	if g.logLevel != "" {
		overrides = append(overrides, config.Override{Key: "log.level", Value: g.logLevel, Source: "--log-level"})
	}
	cfg := config.Default()
	var err error
	if g.config != "" {
		cfg, err = config.Load(g.config, overrides...)
	} else {
		err = cfg.Apply(overrides)
	}
	if err != nil {
		return config.Config{}, err
	}
	g.format = cfg.Log.Format
	g.describe(cmd, cfg)
	return cfg, nil
}

// envOverrides are the settings that BOOTFORGE_* variables give. One set
// empty is left out, as if it were not set, which is the rule for every
// BOOTFORGE_* variable (BOOTFORGE_CONFIG and BOOTFORGE_LOG_FORMAT are
// read so too): a service manager's template with the value left out
// writes VAR=, and the operator means the default, not a log.format ""
// that is refused or a root "".
func envOverrides() []config.Override {
	var out []config.Override
	for _, o := range config.FromEnv() {
		if o.Value != "" {
			out = append(out, o)
		}
	}
	return out
}

// services are the running servers, wired from one config.
type services struct {
	cfg   config.Config
	log   *slog.Logger
	level *slog.LevelVar
	// root is the root being served; serveRoot replaces it. Whatever
	// reads the root while serving follows it through here: menus and
	// files through the directory, the mirror index and checker, the
	// API's images and its kernel check through the catalog and path.
	root atomic.Pointer[servedRoot]
	// rootErr is why a replaced root could not be opened, logged once.
	rootErr string
	tftp    *tftp.Server
	http    []*http.Server      // the API
	fast    []*httpd.FastServer // the file listeners
	files   *httpd.Server
	dhcp    *dhcp.Server
	dhcp6   *dhcp6.Server
	api     *api.Server
	watch   *dhcp.Watch
	db      store.Store
	inv     *inventory.Watcher
	menus   *menufs.FS
	sfs     bootfs.FS
	audit   *audit.Recorder
	// metrics counts every event on its way to the boot log (events) and
	// reads the servers' counters when /metrics is scraped.
	metrics *metrics.Metrics
	events  audit.Sink
	mirrors *mirror.Checker // nil without mirrors
	// keypairs are the certificates of http.tls and api.tls, which a
	// reload reads again (renewed files, same paths).
	keypairs []namedKeypair
	// keys is keys.Digest of the X.509 keys loaded at start, which a
	// reload does not read again (see warnKeys); "" if none are used.
	keys string
	// grubKey is GRUB's OpenPGP key, loaded at start, which a reload does
	// not read again either.
	grubKey *grubKey

	ready   atomic.Bool // every enabled service is bound
	stopped sync.Map    // service name → error, for those that stopped

	configFile string
	dataLock   *os.File           // held while serving (lockDataDir)
	cancel     context.CancelFunc // stops the background work
	background sync.WaitGroup     // background work that writes to the store: done before it closes
}

func serve(ctx context.Context, load func() (config.Config, error), configFile string) error {
	cfg, err := load()
	if err != nil {
		return err
	}
	s := &services{cfg: cfg, level: new(slog.LevelVar), configFile: configFile}
	defer func() {
		if s.dataLock != nil {
			s.dataLock.Close() // after the store has closed
		}
	}()
	defer heapfloor.Start(heapHeadroom)()
	// Lines that come within a millisecond of a write go out together
	// (logbuf says why).
	out := logbuf.New(os.Stderr, time.Millisecond)
	defer out.Close()
	s.log = newLogger(out, cfg.Log, s.level)
	s.warn(cfg)
	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	defer cancel()
	// SIGHUP is caught before start logs "bootforge ready": a reload asked
	// for right after must not be lost (or, by default, end the process).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := s.start(bg); err != nil {
		s.closeStore()
		return err
	}

	follow := time.NewTicker(rootCheckEvery)
	defer follow.Stop()
	for {
		select {
		case <-hup:
			s.reload(load)
		case <-follow.C:
			s.followRoot()
		case <-ctx.Done():
			s.log.Info("shutting down", "grace", shutdownGrace)
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			defer cancel()
			return s.shutdown(sctx)
		}
	}
}

func (s *services) start(ctx context.Context) error {
	cfg := s.cfg
	// data_dir first: root is inside it by default, and MkdirAll would
	// make it 0755 on the way.
	if err := makeDataDir(cfg.DataDir, s.log); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir, s.log)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	s.dataLock = lock
	dir, err := openRoot(cfg)
	if err != nil {
		return err
	}
	if s.db, err = openStore(cfg); err != nil {
		return err
	}
	if s.inv, err = inventory.NewWatcher(s.inventorySource(cfg), s.log); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	s.background.Go(func() { s.inv.Run(ctx, 2*time.Second) })
	sightings := boot.NewSightingTable()
	host, _ := os.Hostname()
	macOf := func(ip netip.Addr) string {
		if mac, ok := sightings.MACByIP(ip); ok {
			return mac.String()
		}
		return ""
	}
	v := buildVersion()
	s.metrics = metrics.New(metrics.Build{Version: v.version, Revision: v.commit, GoVersion: v.goVersion})
	s.metrics.WatchInventory(s.inv.Current)
	var bootLog audit.Sink
	if cfg.Audit.Enabled {
		s.audit = audit.NewRecorder(s.db, host, macOf, s.log)
		s.metrics.WatchBootLog(s.audit)
		bootLog = s.audit
		s.background.Go(func() { keepEvents(ctx, s.db, cfg.Audit.Retention.D(), s.log) })
	}
	s.events = s.metrics.Sink(bootLog, macOf)
	// Files of built image versions are served only as their manifests say.
	s.menus = menufs.New(catalog.NewGuard(dir, s.log), s.inv.Current, s.db, sightings, s.log)
	images := catalog.New(dir.Path(), cfg.DataDir, s.db)
	if err := setVerifier(images, cfg); err != nil && cfg.API.Enabled {
		s.log.Warn("dashboard: image signatures cannot be checked", "err", err)
	}
	s.root.Store(&servedRoot{dir: dir, images: images})
	s.menus.Events = s.sink()
	if cfg.Signing.Enabled || cfg.HTTP.TLS.Boot {
		s.keys = keys.Digest(cfg.KeysDir(), keys.X509Files)
	}
	if cfg.Signing.Enabled {
		// Every generated menu gets a detached CMS signature at <path>.sig.
		signer, err := loadSigner(cfg)
		if err != nil {
			return err
		}
		s.menus.Signer = signer
		s.log.Info("signing generated menus", "keys", cfg.KeysDir(), "signer", signer.Certificate().Subject.String())
	}
	// An operator's iPXE with HTTPS and image trust verifies what it loads.
	s.menus.IPXETrust = cfg.HTTP.TLS.IPXETrust
	// GRUB menus, kernels and initrds of signed profiles get <path>.sig.
	s.grubKey = loadGRUBKey(cfg.KeysDir(), s.log)
	s.sfs = grubSigned(s.grubKey, s.menus, s.inv.Current)
	attrs := []any{"root", cfg.Root, "data_dir", cfg.DataDir, "profiles", len(s.inv.Current().Profiles()), "hosts", len(s.inv.Current().Hosts())}

	if cfg.TFTP.Enabled {
		s.tftp = tftp.New(s.sfs, tftpSettings(cfg), s.log)
		s.tftp.Events = s.sink()
		s.metrics.WatchTFTP(s.tftp)
		conn, err := s.tftp.Listen(cfg.TFTP.Listen)
		if err != nil {
			return fmt.Errorf("tftp.listen: %w", err)
		}
		go func() {
			if err := s.tftp.Serve(conn); err != nil {
				s.stopped.Store("tftp", err)
				s.log.Error("tftp server stopped", "err", err)
			}
		}()
		attrs = append(attrs, "tftp", conn.LocalAddr().String())
	}
	if cfg.HTTP.Enabled || cfg.HTTP.TLS.Enabled || cfg.HTTP.TLS.Boot {
		s.files = httpd.New(s.sfs, cfg.HTTP.AccessLog, cfg.HTTP.MaxRequests, s.log)
		s.files.SetPerClient(cfg.HTTP.MaxPerClient)
		s.files.SetAllow(cfg.AllowList("http"))
		s.files.Events = s.sink()
		s.metrics.WatchHTTP(s.files)
	}
	if cfg.HTTP.Enabled {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		s.serveFiles(ln)
		attrs = append(attrs, "http", ln.Addr().String())
	}
	if cfg.HTTP.TLS.Enabled {
		kp, err := httpd.LoadKeypair(cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key, cfg.TLSDir())
		if err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
		ln, err := net.Listen("tcp", cfg.HTTP.TLS.Listen)
		if err != nil {
			return fmt.Errorf("http.tls.listen: %w", err)
		}
		if err := s.metrics.WatchCert(kp.Certificate()); err != nil {
			return fmt.Errorf("http.tls: %w", err)
		}
		s.keypairs = append(s.keypairs, namedKeypair{"http.tls", kp})
		tc := &tls.Config{GetCertificate: kp.GetCertificate, MinVersion: tls.VersionTLS12}
		s.serveFiles(httpd.TLSListener(ln, tc, s.log, false))
		attrs = append(attrs, "https", ln.Addr().String(), "https_sha256", httpd.Fingerprint(kp.Certificate()))
	}
	if cfg.HTTP.TLS.Boot {
		// The boot TLS listener, for UEFI HTTP boot: an RSA certificate
		// from bootforge's CA and RSA key exchange, which firmware needs.
		addrs, names := bootTLSNames(cfg)
		cert, issued, err := keys.BootTLSCert(cfg.KeysDir(), cfg.TLSDir(), addrs, names, time.Now())
		if err != nil {
			return fmt.Errorf("http.tls.boot: %w", err)
		}
		if issued {
			s.log.Info("boot TLS certificate issued", "file", filepath.Join(cfg.DataDir, "tls", keys.BootCert), "addresses", fmt.Sprint(addrs))
		}
		ln, err := net.Listen("tcp", cfg.HTTP.TLS.BootListen)
		if err != nil {
			return fmt.Errorf("http.tls.boot_listen: %w", err)
		}
		s.serveFiles(httpd.TLSListener(ln, httpd.BootTLSConfig(cert), s.log.With("listener", "boot-tls"), true))
		attrs = append(attrs, "https_boot", ln.Addr().String(), "https_boot_sha256", httpd.Fingerprint(cert))
	}
	s.startMirrors(ctx, cfg, sightings)
	if cfg.DHCP.Mode != dhcp.ModeOff {
		srv, err := dhcp.FromConfig(cfg, s.metrics.Leases(s.db), s.inv.Current, sightings, s.sink(), s.log)
		if err != nil {
			return err
		}
		s.metrics.WatchDHCP(srv)
		if err := srv.Start(); err != nil {
			return err
		}
		s.dhcp = srv
		attrs = append(attrs, "dhcp", cfg.DHCP.Mode, "dhcp_on", strings.Join(srv.Addrs(), ","))
		if cfg.DHCP.Watch.Enabled {
			s.watch = startWatch(cfg.DHCP, s.sink(), s.log)
			if s.watch != nil {
				s.metrics.WatchForeignDHCP(s.watch)
			}
		}
	}
	if cfg.DHCP.V6.Mode != dhcp6.ModeOff {
		srv, err := dhcp6.FromConfig(cfg, dhcp.NewResolver(cfg), s.metrics.Leases(s.db), s.inv.Current, sightings, s.sink(), s.log)
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return err
		}
		s.dhcp6 = srv
		s.metrics.WatchDHCP6(srv)
		attrs = append(attrs, "dhcp6", cfg.DHCP.V6.Mode, "dhcp6_on", strings.Join(srv.Addrs(), ","))
	}
	if cfg.API.Enabled {
		ln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("api.listen: %w", err)
		}
		a := &api.Server{DB: s.db, Inventory: s.inv.Current, Ready: s.problems,
			CheckKernel: s.checkKernel, Store: storePath(cfg),
			Metrics: s.metrics.Handler(), MetricsAuth: cfg.API.MetricsAuth,
			Images: s.images, Log: s.log}
		a.SetAllow(cfg.AllowList("api"))
		s.api = a
		if s.audit != nil {
			// Host and one-shot writes are stored with their events
			// (audit.Changes), which the recorder then shows live.
			a.Events, a.Feed = s.audit, s.audit
		}
		srv := httpd.NewHTTPServer(a.Handler(), s.log)
		// The boot HTTP server's header and idle timeouts and header
		// bound; a whole request (at most api.MaxBody) within ReadTimeout;
		// at most max_connections open, so at most that many requests.
		srv.ReadTimeout = 30 * time.Second
		srv.RegisterOnShutdown(a.CloseStreams) // the live feeds end, or Shutdown would wait for them
		attrs = append(attrs, "api", ln.Addr().String())
		ln = netutil.LimitListener(ln, cfg.API.MaxConnections)
		if cfg.API.TLS.Enabled {
			kp, err := httpd.LoadKeypair(cfg.API.TLS.Cert, cfg.API.TLS.Key, cfg.TLSDir())
			if err != nil {
				return fmt.Errorf("api.tls: %w", err)
			}
			s.keypairs = append(s.keypairs, namedKeypair{"api.tls", kp})
			srv.TLSConfig = &tls.Config{GetCertificate: kp.GetCertificate, MinVersion: tls.VersionTLS12}
			ln = tls.NewListener(ln, srv.TLSConfig)
			attrs = append(attrs, "api_sha256", httpd.Fingerprint(kp.Certificate()))
		}
		s.serveHTTP(srv, ln)
	}
	s.ready.Store(true)
	s.log.Info("bootforge ready", attrs...)
	return nil
}

// sink takes the servers' events: it counts them for the metrics and
// passes them on to the boot log, if it is on.
func (s *services) sink() audit.Sink { return s.events }

// bootTLSNames are what the boot TLS certificate is issued for: the
// addresses clients are sent to (every address of this machine but
// link-local ones, dhcp.server_address, boot_listen's host) and the host
// name. EDK2 checks the URL's host against them.
func bootTLSNames(cfg config.Config) ([]net.IP, []string) {
	var addrs []net.IP
	add := func(ip net.IP) {
		if ip == nil || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			return
		}
		for _, a := range addrs {
			if a.Equal(ip) {
				return
			}
		}
		addrs = append(addrs, ip)
	}
	if ifaddrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifaddrs {
			if ipn, ok := a.(*net.IPNet); ok {
				add(ipn.IP)
			}
		}
	}
	if sa := cfg.DHCP.ServerAddress; sa.IsValid() {
		add(net.IP(sa.AsSlice()))
	}
	if host, _, err := net.SplitHostPort(cfg.HTTP.TLS.BootListen); err == nil {
		add(net.ParseIP(host))
	}
	names := []string{"localhost"}
	if h, err := os.Hostname(); err == nil && h != "" && h != "localhost" {
		names = append(names, h)
	}
	return addrs, names
}

// problems lists what keeps the service from being ready.
func (s *services) problems() []string {
	var out []string
	if !s.ready.Load() {
		out = append(out, "starting")
	}
	s.stopped.Range(func(k, v any) bool {
		out = append(out, fmt.Sprintf("%s stopped: %v", k, v))
		return true
	})
	return out
}

// serveFiles serves the files on ln, a file listener (HTTP or HTTPS).
func (s *services) serveFiles(ln net.Listener) {
	srv := httpd.NewFastServer(s.files.FastHandler(), s.log)
	s.fast = append(s.fast, srv)
	go func() {
		if err := srv.Serve(ln); err != nil {
			s.stopped.Store("http "+ln.Addr().String(), err)
			s.log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

func (s *services) serveHTTP(srv *http.Server, ln net.Listener) {
	s.http = append(s.http, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.stopped.Store("http "+ln.Addr().String(), err)
			s.log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// keepEvents deletes boot-log events older than retention, hourly.
func keepEvents(ctx context.Context, db store.Store, retention time.Duration, log *slog.Logger) {
	if retention <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := db.DeleteEventsBefore(time.Now().Add(-retention)); err != nil {
			log.Error("boot log: retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// makeDataDir makes data_dir 0700. An existing one that others can read
// or write (an older bootforge made it 0755) gets a warning, not a chmod:
// data_dir may be a directory bootforge does not own alone, and the
// secrets in it are 0600 each (the store, the TLS and signing keys). The
// rule and its words are check's data_dir item.
func makeDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if it := check.DataDir(dir); it.Status != "pass" {
		log.Warn("data_dir: "+it.Detail, "data_dir", dir)
	}
	return nil
}

// lockDataDir takes the lock that keeps a second `bootforge serve` off
// dir. Two servers on one data_dir would share its store and keys while
// each kept its own offers, sightings and one-shot state in memory; the
// DHCP port, which the listener opens with SO_REUSEPORT, would not stop
// the second, and the kernel would spread the clients between the two.
// The lock is an advisory flock on the directory itself, released when
// the returned file is closed or the process ends, however it ends. A
// file system that has no locks (ENOLCK: an NFS mount without its lock
// manager) gets a warning, not a refusal to serve, and a nil file.
func lockDataDir(dir string, log *slog.Logger) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("%s is in use by another bootforge serve: stop it, or give this one a data_dir of its own", dir)
	default:
		f.Close()
		log.Warn("data_dir: cannot lock it, so a second serve on it would not be refused", "data_dir", dir, "err", err)
		return nil, nil
	}
}

// closeStore stops what writes to the store in the background (the
// inventory watcher, retention, the boot log's recorder) and then closes
// it, also when start failed part-way: a write that came after the close
// would fail, and one racing it would be a data race.
func (s *services) closeStore() error {
	s.cancel()
	s.background.Wait()
	if s.audit != nil {
		s.audit.Close()
		if d := s.audit.Dropped(); d > 0 {
			s.log.Warn("boot log: events dropped while running", "dropped", d, "written", s.audit.Written())
		}
	}
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// openStore opens the store store.url names: by default the embedded
// SQLite file under the data dir.
func openStore(cfg config.Config) (store.Store, error) {
	if loc, err := store.Locate(cfg.Store.URL, cfg.DataDir); err == nil && !loc.Postgres {
		cfg.Store.URL = "sqlite:" + storePath(cfg) // absolute, as the server reports it
	}
	db, err := store.Open(cfg) // its errors name the store
	if errors.Is(err, fs.ErrPermission) {
		// Most often a command run as another user than serve's.
		return nil, fmt.Errorf("%w: run bootforge as the user that owns data_dir %s (or as root)", err, cfg.DataDir)
	}
	return db, err
}

// inventorySource says where profiles and hosts come from: the config,
// the inventory directory (default: beside the config file, else the data
// dir), and the store.
func inventorySource(cfg config.Config, configFile string, db store.Store) inventory.Source {
	dir := cfg.Inventory.Dir
	if dir == "" {
		dir = cfg.DataDir
		if configFile != "" {
			dir = filepath.Dir(configFile)
		}
	}
	var secure []netip.Prefix
	for _, sn := range cfg.DHCP.Subnets {
		if sn.SecureBoot {
			secure = append(secure, sn.Subnet.Prefix)
		}
	}
	return inventory.Source{Config: cfg.Inventory, ConfigFile: configFile, Dir: dir, Store: db,
		CheckKernel:       func(path string) error { return checkSigned(cfg.Root, path) },
		SecureBootSubnets: secure,
		Images:            catalog.New(cfg.Root, cfg.DataDir, db),
		Root:              cfg.Root, CaseInsensitive: cfg.TFTP.CaseInsensitive}
}

// inventorySource is the server's: warnings about profiles in the
// inventory directory go to its log.
func (s *services) inventorySource(cfg config.Config) inventory.Source {
	src := inventorySource(cfg, s.configFile, s.db)
	src.Warn = func(msg string) { s.log.Warn("inventory: " + msg) }
	return src
}

// checkSigned refuses a kernel that Secure Boot firmware would refuse: one
// without an Authenticode signature, one whose signature does not match
// it, or one we cannot read.
func checkSigned(root, path string) error {
	if strings.Contains(path, "://") {
		return errors.New("a Secure Boot kernel must be a file in root, so that its signature can be checked")
	}
	name, err := bootfs.Clean(path)
	if err != nil {
		return err
	}
	sig, err := authenticode.Inspect(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	if !sig.Signed {
		return errors.New("not signed: Secure Boot firmware would refuse it")
	}
	if !sig.DigestMatches {
		return fmt.Errorf("signature does not match the file (signed %s digest %s, the file's %s)", sig.Algorithm, sig.SignedDigest, sig.Digest)
	}
	return nil
}

func tftpSettings(cfg config.Config) tftp.Settings {
	c := cfg.TFTP
	return tftp.Settings{
		MaxBlockSize:  c.MaxBlockSize,
		MaxWindowSize: c.MaxWindowSize,
		Timeout:       c.Timeout.D(),
		Retries:       c.Retries,
		MaxTransfers:  c.MaxTransfers,
		MaxPerClient:  c.MaxPerClient,
		Allow:         cfg.AllowList("tftp"),
	}
}

// liveKeys are the settings reload applies, to requests that start from
// now on: keys, or sections of keys, less restartKeys. A change to any
// other key is logged by name and waits for a restart. liveConfig takes
// exactly these over; TestReloadKeys holds the two together.
var (
	liveKeys = []string{"root", "allow", "tftp", "http.access_log", "http.max_requests", "http.max_per_client", "http.allow",
		"dhcp.allow", "api.allow", "log.level", "inventory"}
	restartKeys = []string{"tftp.listen", "tftp.enabled"}
)

// appliesLive reports whether reload applies a change to key.
func appliesLive(key string) bool { return underAny(key, liveKeys) && !underAny(key, restartKeys) }

// underAny reports whether key is one of keys or inside one of them.
func underAny(key string, keys []string) bool {
	for _, k := range keys {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return true
		}
	}
	return false
}

// liveConfig is the running config after a reload: old, with the settings
// that apply live taken from cfg.
func liveConfig(old, cfg config.Config) config.Config {
	run := old
	run.Root = cfg.Root
	run.TFTP = cfg.TFTP
	run.TFTP.Listen, run.TFTP.Enabled = old.TFTP.Listen, old.TFTP.Enabled
	run.HTTP.AccessLog, run.HTTP.MaxRequests, run.HTTP.MaxPerClient = cfg.HTTP.AccessLog, cfg.HTTP.MaxRequests, cfg.HTTP.MaxPerClient
	run.Log.Level = cfg.Log.Level
	run.Inventory = cfg.Inventory
	run.Allow, run.HTTP.Allow, run.DHCP.Allow, run.API.Allow = cfg.Allow, cfg.HTTP.Allow, cfg.DHCP.Allow, cfg.API.Allow
	return run
}

// reload applies a new config, or keeps the old one if the new one is bad.
// The settings in liveKeys apply to requests that start from now on; every
// other change is named in a warning and applies on restart.
func (s *services) reload(load func() (config.Config, error)) {
	cfg, err := load()
	if err == nil {
		err = config.CheckReload(s.cfg, cfg)
	}
	if err != nil {
		s.log.Error("reload refused, keeping the running config", "err", err)
		return
	}
	old := s.cfg
	run := liveConfig(old, cfg)
	// The new root against the running data_dir, resolved now: the file
	// system may have changed since start.
	if err := run.Contained(); err != nil {
		s.log.Error("reload refused, keeping the running config", "err", err)
		return
	}
	dir := s.root.Load().dir
	if run.Root != old.Root || run.TFTP.CaseInsensitive != old.TFTP.CaseInsensitive || dir.Replaced() {
		if dir, err = openRoot(run); err != nil {
			s.log.Error("reload refused, keeping the running config", "err", err)
			return
		}
	}
	if err := s.inv.SetSource(s.inventorySource(run)); err != nil {
		s.log.Error("reload refused, keeping the running config", "err", fmt.Errorf("inventory: %w", err))
		return
	}
	s.level.Set(parseLevel(run.Log.Level))
	s.serveRoot(dir)
	if s.tftp != nil {
		s.tftp.Update(s.sfs, tftpSettings(run))
	}
	if s.files != nil {
		s.files.Update(s.sfs, run.HTTP.AccessLog, run.HTTP.MaxRequests)
		s.files.SetPerClient(run.HTTP.MaxPerClient)
		s.files.SetAllow(run.AllowList("http"))
	}
	if s.dhcp != nil {
		s.dhcp.SetAllow(run.AllowList("dhcp"))
	}
	if s.dhcp6 != nil {
		s.dhcp6.SetAllow(run.AllowList("dhcp"))
	}
	if s.api != nil {
		s.api.SetAllow(run.AllowList("api"))
	}
	if s.mirrors != nil {
		s.mirrors.Kick()
	}
	s.reloadCerts()
	s.warnKeys(run)
	s.cfg = run
	var applied []string
	for _, key := range config.Changed(old, cfg) {
		if appliesLive(key) {
			applied = append(applied, key)
		} else {
			s.log.Warn("reload: " + key + " changed; it applies on restart")
		}
	}
	s.warn(cfg)
	s.log.Info("config reloaded", "root", run.Root, "applied", strings.Join(applied, ","))
}

type namedKeypair struct {
	key string // the config key: http.tls, api.tls
	kp  *httpd.Keypair
}

// reloadCerts reads the TLS certificates again, so that a renewed one
// (same files) serves new handshakes; one that cannot be read leaves the
// one in service, with an error. The boot TLS certificate is bootforge's
// own and renewed at start.
func (s *services) reloadCerts() {
	for _, n := range s.keypairs {
		changed, err := n.kp.Reload()
		switch {
		case err != nil:
			s.log.Error("reload: "+n.key+": certificate not replaced, the one in service stays", "err", err)
		case changed:
			cert := n.kp.Certificate()
			if n.key == "http.tls" {
				if err := s.metrics.WatchCert(cert); err != nil {
					s.log.Warn("reload: "+n.key+": certificate expiry not exported", "err", err)
				}
			}
			s.log.Info("reload: "+n.key+": certificate replaced", "sha256", httpd.Fingerprint(cert))
		}
	}
}

// warnKeys says, on a reload, that the signing keys were replaced since
// the start (keys init --force) and are not taken up: the signer, the CA
// that image signatures are checked against and the boot TLS certificate
// issued by it are loaded at start, and would have to be swapped together;
// so is GRUB's OpenPGP key (grubKey), which keys init --force keeps, and
// which is named only if its own files were replaced. The reload was
// silent, and menus went on being signed with the old key after a SIGHUP
// that the operator took to have applied the new one.
func (s *services) warnKeys(run config.Config) {
	replaced := func(was string, files []string) bool {
		now := keys.Digest(run.KeysDir(), files)
		return was != "" && now != "" && now != was
	}
	var old []string
	if replaced(s.keys, keys.X509Files) {
		if run.Signing.Enabled {
			old = append(old, "menus are signed with the old signing key")
		}
		if run.HTTP.TLS.Boot {
			old = append(old, "the boot TLS certificate is the old CA's")
		}
	}
	if replaced(s.grubKey.loadedDigest(), keys.OpenPGPFiles) {
		old = append(old, "GRUB files are signed with the old OpenPGP key")
	}
	if len(old) == 0 {
		return
	}
	s.log.Warn("reload: the keys in " + run.KeysDir() + " were replaced; they apply on restart (until then " + strings.Join(old, ", and ") + ")")
}

// openRoot makes cfg's root if it is missing and opens it.
func openRoot(cfg config.Config) (*bootfs.Dir, error) {
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	dir, err := bootfs.OpenDir(cfg.Root, cfg.TFTP.CaseInsensitive, cfg.Private()...)
	if err != nil {
		return nil, fmt.Errorf("root: %w", err)
	}
	return dir, nil
}

// rootCheckEvery is how often serve looks whether root still names the
// directory it serves.
const rootCheckEvery = 2 * time.Second

// followRoot opens root again when its path names another directory than
// the one served: a deployment that renames a new tree into place, or
// flips a symlink, is served within rootCheckEvery, as a server that
// resolves the path on every request would. Transfers in flight finish
// from the old directory, which stays open (see reload).
func (s *services) followRoot() {
	if !s.root.Load().dir.Replaced() {
		return
	}
	dir, err := openRoot(s.cfg)
	if err != nil {
		if err.Error() != s.rootErr {
			s.log.Error("root was replaced but cannot be opened; still serving the old directory", "root", s.cfg.Root, "err", err)
			s.rootErr = err.Error()
		}
		return
	}
	s.rootErr = ""
	s.serveRoot(dir)
	s.log.Info("root replaced; serving the new directory", "root", s.cfg.Root)
}

// retireAfter is how long a replaced root directory stays open. Files
// already open have descriptors of their own, so transfers in flight do
// not need it; an open that began just before the switch still may, and
// closing it then could hand its descriptor number to another file.
const retireAfter = time.Minute

// servedRoot is the root being served: the directory open and the image
// catalog over its path. They change together, in serveRoot.
type servedRoot struct {
	dir    *bootfs.Dir
	images *catalog.Catalog
}

// serveRoot makes dir the directory served, under the menus and for the
// image catalog, and closes the one it replaces once retireAfter has
// passed, so that a root replaced every hour does not hold a descriptor
// per deployment.
func (s *services) serveRoot(dir *bootfs.Dir) {
	old := s.root.Load()
	s.menus.SetDisk(catalog.NewGuard(dir, s.log))
	images := old.images
	if dir != old.dir {
		// A catalog per directory served, also for a root replaced under
		// the same path: the API's verifications are of one tree. Its
		// signatures are checked as before (signing is not reloaded).
		images = catalog.New(dir.Path(), s.cfg.DataDir, s.db)
		images.Verifier = old.images.Verifier
	}
	s.root.Store(&servedRoot{dir: dir, images: images})
	if old.dir != dir {
		time.AfterFunc(retireAfter, func() { old.dir.Close() })
	}
}

// images is the image catalog of the root being served: the mirror index
// and checker and the API list its versions.
func (s *services) images() *catalog.Catalog { return s.root.Load().images }

// checkKernel is checkSigned in the root being served, for the API's
// writes of Secure Boot hosts.
func (s *services) checkKernel(path string) error {
	return checkSigned(s.root.Load().dir.Path(), path)
}

// warn logs what cfg probably has wrong but does not stop the service,
// each with its file, line and key.
func (s *services) warn(cfg config.Config) {
	for _, w := range cfg.Warnings() {
		s.log.Warn(configWarning(w))
	}
}

// shutdown stops every listener at once and then waits, within ctx, for
// what each has in flight. Each Shutdown and Close below stops accepting
// first and then drains, so they run together: one in sequence after
// another would keep accepting work while those before it drain.
func (s *services) shutdown(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	stop := func(what string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				mu.Unlock()
			}
		}()
	}
	for _, srv := range s.http {
		stop("api", func() error { return srv.Shutdown(ctx) })
	}
	for _, srv := range s.fast {
		stop("http", func() error { return srv.ShutdownWithContext(ctx) })
	}
	if s.tftp != nil {
		stop("tftp", func() error { return s.tftp.Shutdown(ctx) })
	}
	if s.dhcp != nil {
		stop("dhcp", func() error { s.dhcp.Close(); return nil })
	}
	if s.dhcp6 != nil {
		stop("dhcp6", func() error { s.dhcp6.Close(); return nil })
	}
	if s.watch != nil {
		stop("dhcp watch", func() error { s.watch.Close(); return nil })
	}
	wg.Wait()
	if err := s.closeStore(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}
