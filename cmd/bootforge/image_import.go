package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bootforge/internal/blob"
	"bootforge/internal/config"
	"bootforge/internal/stall"
	"bootforge/internal/sums"
)

// Limits on the small files an import reads whole.
const (
	maxSumsSize    = 16 << 20
	maxSigSize     = 1 << 20
	maxKeyringSize = 64 << 20
)

// HTTP timeouts of an import: connecting and waiting for the headers are
// bounded, the transfer is not (a 5 GiB ISO over a slow link takes its
// time), but one that delivers nothing for importStall fails.
const (
	importDialTimeout   = 30 * time.Second
	importHeaderTimeout = time.Minute
	importStall         = 2 * time.Minute
)

type importOptions struct {
	sha256, sums, sumsSig, keyring string
}

func newImageImportCmd(g *globalFlags) *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import SRC (--sha256 HEX | --sums SHA256SUMS [--sums-sig SIG --keyring KEYRING])",
		Short: "Import a source (a file or an http(s) URL) into the blob store, checking its SHA-256",
		Long: `Stream SRC, a file or an http(s) URL, into the content-addressed blob store
at data_dir/blobs/sha256/<hex>, hashing it as it is copied, and print its
SHA-256. The same content imported twice is stored once.

The expected digest is given with --sha256, or read from a SHA256SUMS file
(--sums): the line whose name (without a leading ./) is SRC's file name, or
the end of SRC's path (a URL's path, a file's absolute path) after a /; the
longest such name wins. With --sums-sig and --keyring, the
sums file must carry a good detached OpenPGP signature by a key in the
keyring (what ` + "`gpg --export KEYID`" + ` writes; armored or binary).

A digest that differs, a bad signature or a transfer that fails stores
nothing: no blob, no temporary file. A progress bar shows when stderr is a
terminal.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImageImport(cmd, g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.sha256, "sha256", "", "the expected SHA-256 of SRC (64 hex digits, or sha256:<hex>)")
	f.StringVar(&o.sums, "sums", "", "a SHA256SUMS file listing SRC by its file name or the end of its path")
	f.StringVar(&o.sumsSig, "sums-sig", "", "detached OpenPGP signature of the --sums file (armored or binary); needs --keyring")
	f.StringVar(&o.keyring, "keyring", "", "OpenPGP public keys the --sums-sig must be made by (gpg --export output)")
	for _, sf := range serveFlags {
		if sf.key == "data_dir" {
			f.String(sf.name, "", sf.usage+" (env "+config.EnvName(sf.key)+")")
		}
	}
	return cmd
}

// checkImportFlags refuses every combination but the two forms.
func checkImportFlags(o importOptions) error {
	switch {
	case o.sums == "" && (o.sumsSig != "" || o.keyring != ""):
		return errors.New("--sums-sig and --keyring check a --sums file, and there is none")
	case o.sha256 == "" && o.sums == "":
		return errors.New("give the expected digest: --sha256 HEX or --sums SHA256SUMS")
	case o.sha256 != "" && o.sums != "":
		return errors.New("--sha256 and --sums both give the expected digest: use one")
	case o.sumsSig != "" && o.keyring == "":
		return errors.New("--sums-sig needs --keyring: the keys the signature must be made by")
	case o.keyring != "" && o.sumsSig == "":
		return errors.New("--keyring needs --sums-sig: the signature of the --sums file")
	}
	return nil
}

func runImageImport(cmd *cobra.Command, g *globalFlags, o importOptions, arg string) error {
	if err := checkImportFlags(o); err != nil {
		return err
	}
	cfg, err := loadConfig(cmd, g)
	if err != nil {
		return err
	}
	src, err := parseSource(arg)
	if err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	want, from, err := expectedDigest(stderr, o, src.path)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	store, err := blob.Open(cfg.DataDir)
	if err != nil {
		return err
	}
	in, size, err := openSource(ctx, src)
	if err != nil {
		return err
	}
	defer in.Close()

	var r io.Reader = in
	var bar *progressbar.ProgressBar
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		bar = newImportBar(f, src.name, size)
		pr := progressbar.NewReader(in, bar)
		r = &pr
	}
	res, err := store.Import(ctx, r, want)
	if bar != nil {
		if err == nil {
			bar.Finish()
		}
		bar.Clear()
	}
	var mm *blob.MismatchError
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("%s: stopped (%s); nothing was stored", src.shown, context.Cause(ctx))
	case errors.As(err, &mm):
		return fmt.Errorf("%s: SHA-256 mismatch: expected %s (%s), got %s (%d bytes); nothing was stored", src.shown, mm.Want, from, mm.Got, mm.Size)
	case err != nil:
		return fmt.Errorf("%s: %w; nothing was stored", src.shown, err)
	}
	switch {
	case res.Existed:
		fmt.Fprintf(cmd.OutOrStdout(), "%s already stored (%d bytes)\n", res.Digest, res.Size)
	case res.Replaced:
		fmt.Fprintf(cmd.OutOrStdout(), "%s stored (%d bytes): replaced a damaged copy\n", res.Digest, res.Size)
	default:
		fmt.Fprintf(cmd.OutOrStdout(), "%s stored (%d bytes)\n", res.Digest, res.Size)
	}
	return nil
}

func newImportBar(w io.Writer, name string, size int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionClearOnFinish(),
	)
}

// source is what SRC names: a file, or an http(s) URL.
type source struct {
	arg  string   // as given: what is opened
	url  *url.URL // nil for a file
	name string   // the file name: a path's base name, a URL's last path segment
	// path is what a SHA256SUMS line is matched against: a URL's path, or
	// a file's absolute path, with slashes.
	path string
	// shown stands for SRC in every message: a URL's password, the
	// operator's secret, is masked.
	shown string
}

// urlScheme matches the start of an absolute URL, "scheme://".
var urlScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

// parseSource reads SRC. Anything that starts like a URL is taken as one,
// so that a mistyped URL is refused as such rather than looked for as a
// file, which would print it whole.
func parseSource(arg string) (*source, error) {
	if !urlScheme.MatchString(arg) {
		if arg == "" || strings.HasSuffix(arg, "/") {
			return nil, fmt.Errorf("%q names no file", arg)
		}
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, err
		}
		return &source{arg: arg, name: filepath.Base(arg), path: filepath.ToSlash(abs), shown: arg}, nil
	}
	u, err := url.Parse(arg)
	if err != nil {
		shown := maskUserinfo(arg)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // what is wrong, without the URL
		}
		var ee url.EscapeError
		if errors.As(err, &ee) {
			// The bad escape may be part of the password.
			return nil, fmt.Errorf("%s: not a valid URL: a %% not followed by two hex digits", shown)
		}
		return nil, fmt.Errorf("%s: not a valid URL: %v", shown, err)
	}
	shown := u.Redacted()
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s: only http and https URLs (or a file path) can be imported", shown)
	case u.Host == "":
		return nil, fmt.Errorf("%s: no host in the URL", shown)
	case u.Path == "" || strings.HasSuffix(u.Path, "/"):
		return nil, fmt.Errorf("%s: the URL names no file", shown)
	}
	return &source{arg: arg, url: u, name: path.Base(u.Path), path: u.Path, shown: shown}, nil
}

// maskUserinfo masks the password in a URL that url.Parse refused, as
// url.URL.Redacted does in one it accepts.
func maskUserinfo(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	start := i + len("://")
	authority := s[start:]
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return s
	}
	user, _, hasPassword := strings.Cut(authority[:at], ":")
	if !hasPassword {
		return s
	}
	return s[:start] + user + ":xxxxx" + s[start+at:]
}

// expectedDigest is the digest SRC must have, and where it comes from.
func expectedDigest(w io.Writer, o importOptions, srcPath string) (digest, from string, err error) {
	if o.sha256 != "" {
		d, err := parseSHA256(o.sha256)
		if err != nil {
			return "", "", err
		}
		return d, "--sha256", nil
	}
	list, err := readSmall(o.sums, maxSumsSize)
	if err != nil {
		return "", "", err
	}
	if o.sumsSig != "" {
		sig, err := readSmall(o.sumsSig, maxSigSize)
		if err != nil {
			return "", "", err
		}
		keys, err := readSmall(o.keyring, maxKeyringSize)
		if err != nil {
			return "", "", err
		}
		signer, err := sums.Verify(list, sig, keys)
		if err != nil {
			return "", "", fmt.Errorf("%s: signature %s, keyring %s: %w; nothing was imported", o.sums, o.sumsSig, o.keyring, err)
		}
		fmt.Fprintf(w, "%s: good signature by %s\n", o.sums, signer)
	} else {
		fmt.Fprintf(w, "warning: %s is not signature-checked (give --sums-sig and --keyring)\n", o.sums)
	}
	// The entries come from the very bytes whose signature was checked.
	entries, err := sums.Parse(list)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", o.sums, err)
	}
	e, err := sums.Find(entries, srcPath)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w; nothing was imported", o.sums, err)
	}
	return e.Digest, fmt.Sprintf("%s line %d", o.sums, e.Line), nil
}

// parseSHA256 reads --sha256: 64 hex digits in either case, as vendors
// print them, optionally as sha256:<hex>, as image build --from takes a
// blob. The digest returned is in lower case, the form that names a blob.
func parseSHA256(flag string) (string, error) {
	d := strings.TrimPrefix(strings.TrimSpace(flag), "sha256:")
	if len(d) != 64 || strings.Trim(d, "0123456789abcdefABCDEF") != "" {
		return "", fmt.Errorf("--sha256 %q: want 64 hex digits (a SHA-256), or sha256:<64 hex digits>", flag)
	}
	return strings.ToLower(d), nil
}

// readSmall reads a file that must be small: a sums list, a signature, a
// keyring.
func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d MiB; is it the right file?", name, limit>>20)
	}
	return b, nil
}

// openSource opens a file or starts an HTTP GET. size is -1 when unknown.
func openSource(ctx context.Context, src *source) (io.ReadCloser, int64, error) {
	if src.url == nil {
		f, err := os.Open(src.arg)
		if err != nil {
			return nil, 0, err
		}
		size := int64(-1)
		if info, err := f.Stat(); err == nil && info.Mode().IsRegular() {
			size = info.Size()
		}
		return f, size, nil
	}
	reqCtx, cancel := context.WithCancelCause(ctx)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, src.url.String(), nil)
	if err != nil {
		cancel(nil)
		return nil, 0, fmt.Errorf("GET %s: %w", src.shown, err)
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: importDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   importDialTimeout,
		ResponseHeaderTimeout: importHeaderTimeout,
		ForceAttemptHTTP2:     true,
		// What is stored must be the bytes the server sent, the bytes the
		// vendor's digest is of: without this the transport asks for gzip
		// and undoes the Content-Encoding: gzip a server puts on a .gz.
		DisableCompression: true,
	}}
	resp, err := client.Do(req)
	if err != nil {
		cancel(nil)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // named by src.shown instead
		}
		return nil, 0, fmt.Errorf("GET %s: %w", src.shown, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel(nil)
		return nil, 0, fmt.Errorf("GET %s: %s", src.shown, resp.Status)
	}
	return stall.NewReader(reqCtx, cancel, resp.Body, importStall), resp.ContentLength, nil
}
