package e2e

// `bootforge image import` as an operator runs it (issue #12, Import):
// digests from sha256sum, SHA256SUMS signed by a real gpg, and an HTTP
// source that dies mid-transfer. Whatever is refused must leave the blob
// directory exactly as it was.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// importLab is a config whose data_dir holds the blob store.
type importLab struct {
	dir     string // sources, sums, keys
	dataDir string
	config  string
}

func newImportLab(t *testing.T) *importLab {
	t.Helper()
	base := t.TempDir()
	l := &importLab{dir: filepath.Join(base, "src"), dataDir: filepath.Join(base, "data"), config: filepath.Join(base, "bootforge.yaml")}
	if err := os.Mkdir(l.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("root: %s\ndata_dir: %s\n", filepath.Join(base, "root"), l.dataDir)
	if err := os.WriteFile(l.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

// importCmd runs `bootforge --config CFG image import ARGS...`.
func (l *importLab) importCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return clRun(t, 2*time.Minute, nil, append([]string{"--config", l.config, "image", "import"}, args...)...)
}

// source writes a file of n random bytes into the lab and returns its path.
func (l *importLab) source(t *testing.T, name string, n int) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, randomBytes(n), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// sha256sum runs the real sha256sum on path and returns the digest.
func sha256sum(t *testing.T, path string) string {
	t.Helper()
	need(t, "sha256sum")
	out, err := run(t, time.Minute, "sha256sum", path)
	if err != nil {
		t.Fatalf("sha256sum: %v\n%s", err, out)
	}
	d, _, _ := strings.Cut(out, " ")
	if len(d) != 64 {
		t.Fatalf("sha256sum printed %q", out)
	}
	return d
}

// blobDir lists everything below data_dir/blobs, recursively: path, mode,
// size and the SHA-256 of each file. "" when there is no blob directory.
func (l *importLab) blobDir(t *testing.T) string {
	t.Helper()
	root := filepath.Join(l.dataDir, "blobs")
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s %s %d", rel, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += " " + hex.EncodeToString(sum[:])
		}
		lines = append(lines, line)
		return nil
	})
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (l *importLab) requireUnchanged(t *testing.T, before string) {
	t.Helper()
	if after := l.blobDir(t); after != before {
		t.Fatalf("the blob directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func (l *importLab) requireNoTemps(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(l.dataDir, "blobs", "tmp"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// requireBlob checks that the blob named digest holds exactly src's bytes.
func (l *importLab) requireBlob(t *testing.T, digest, src string) {
	t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(l.dataDir, "blobs", "sha256", digest))
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	if string(got) != string(want) {
		t.Fatalf("blob %s differs from %s", digest, src)
	}
}

// partialTemp says whether an import has written to a temporary file.
func (l *importLab) partialTemp() bool {
	entries, _ := os.ReadDir(filepath.Join(l.dataDir, "blobs", "tmp"))
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Size() > 0 {
			return true
		}
	}
	return false
}

func requireRefused(t *testing.T, out string, code int, want ...string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit 0, want a refusal; output:\n%s", out)
	}
	t.Logf("refused (exit %d): %s", code, strings.TrimSpace(out))
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output does not say %q:\n%s", w, out)
		}
	}
}

func TestImageImportRightDigest(t *testing.T) {
	l := newImportLab(t)
	src := l.source(t, "debian-12-netinst.iso", 5<<20+123)
	digest := sha256sum(t, src)

	out, code := l.importCmd(t, src, "--sha256", digest)
	if code != 0 || !strings.Contains(out, digest+" stored") {
		t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, digest+" stored")
	}
	l.requireBlob(t, digest, src)
	l.requireNoTemps(t)
	if strings.Contains(out, "\r") {
		t.Errorf("a progress bar was drawn, but stderr is not a terminal:\n%q", out)
	}

	// Again, with the digest in capitals as some vendors print it: stored once.
	before := l.blobDir(t)
	out, code = l.importCmd(t, src, "--sha256", strings.ToUpper(digest))
	if code != 0 || !strings.Contains(out, digest+" already stored") {
		t.Fatalf("second import: exit %d, output:\n%s", code, out)
	}
	l.requireUnchanged(t, before)
}

func TestImageImportWrongDigest(t *testing.T) {
	l := newImportLab(t)
	kept := l.source(t, "kept.iso", 1<<20)
	if out, code := l.importCmd(t, kept, "--sha256", sha256sum(t, kept)); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	before := l.blobDir(t)

	src := l.source(t, "tampered.iso", 3<<20+5)
	actual := sha256sum(t, src)
	wrong := sha256sum(t, kept) // a real digest, of another file
	out, code := l.importCmd(t, src, "--sha256", wrong)
	requireRefused(t, out, code, src, "mismatch", "expected "+wrong, "got "+actual)
	l.requireUnchanged(t, before)

	// Not a digest at all: refused before anything is read.
	out, code = l.importCmd(t, src, "--sha256", "../../etc/passwd")
	requireRefused(t, out, code, "--sha256")
	l.requireUnchanged(t, before)
}

func TestImageImportFlags(t *testing.T) {
	l := newImportLab(t)
	src := l.source(t, "x.iso", 100)
	sums := filepath.Join(l.dir, "SHA256SUMS")
	os.WriteFile(sums, []byte(sha256sum(t, src)+"  x.iso\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{src}, "--sha256 HEX or --sums"},
		{[]string{src, "--sha256", sha256sum(t, src), "--sums", sums}, "use one"},
		{[]string{src, "--sums", sums, "--sums-sig", sums}, "--sums-sig needs --keyring"},
		{[]string{src, "--sums", sums, "--keyring", sums}, "--keyring needs --sums-sig"},
		{[]string{src, "--sha256", sha256sum(t, src), "--sums-sig", sums, "--keyring", sums}, "check a --sums file"},
		{[]string{filepath.Join(l.dir, "missing.iso"), "--sha256", sha256sum(t, src)}, "missing.iso"},
		{[]string{"ftp://127.0.0.1/x.iso", "--sha256", sha256sum(t, src)}, "http and https"},
	} {
		out, code := l.importCmd(t, tc.args...)
		requireRefused(t, out, code, tc.want)
	}
	if l.blobDir(t) != "" && strings.Contains(l.blobDir(t), "sha256/") {
		t.Fatalf("something was stored:\n%s", l.blobDir(t))
	}
}

// gpgKey is a throwaway OpenPGP key made by gpg in its own GNUPGHOME.
type gpgKey struct {
	home string
}

// newGPGKey makes a key of algo ("rsa3072", "ed25519", ...).
func newGPGKey(t *testing.T, uid, algo string) *gpgKey {
	t.Helper()
	need(t, "gpg", "gpgconf")
	home, err := os.MkdirTemp("", "bf-gpg-") // short: gpg-agent's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	k := &gpgKey{home: home}
	t.Cleanup(func() {
		// Stops the agent that this GNUPGHOME started, and only that one.
		k.gpg(t, "gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(home)
	})
	if out, err := k.gpg(t, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", uid, algo, "sign", "never"); err != nil {
		t.Fatalf("gpg --quick-gen-key: %v\n%s", err, out)
	}
	return k
}

// gpg runs a GnuPG program on this key's GNUPGHOME.
func (k *gpgKey) gpg(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+k.home)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// export writes the public key, as `gpg --export [--armor]` does, to path.
func (k *gpgKey) export(t *testing.T, path string, armor bool) {
	t.Helper()
	args := []string{"--batch", "--output", path}
	if armor {
		args = append(args, "--armor")
	}
	if out, err := k.gpg(t, "gpg", append(args, "--export")...); err != nil {
		t.Fatalf("gpg --export: %v\n%s", err, out)
	}
}

// sign writes a detached signature of file to sig.
func (k *gpgKey) sign(t *testing.T, file, sig string, armor bool) {
	t.Helper()
	args := []string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--output", sig}
	if armor {
		args = append(args, "--armor")
	}
	if out, err := k.gpg(t, "gpg", append(args, "--detach-sign", file)...); err != nil {
		t.Fatalf("gpg --detach-sign: %v\n%s", err, out)
	}
}

func TestImageImportSignedSums(t *testing.T) {
	l := newImportLab(t)
	vendor := newGPGKey(t, "Vendor CD Signing Key <cd@vendor.example>", "rsa3072")
	stranger := newGPGKey(t, "Someone Else <else@example.org>", "ed25519")

	// A vendor's download directory: two images, their SHA256SUMS from
	// sha256sum, signed.
	iso := l.source(t, "vendor-12.5.0-amd64-netinst.iso", 4<<20+1)
	other := l.source(t, "vendor-12.5.0-arm64-netinst.iso", 1<<20)
	out, err := run(t, time.Minute, "sh", "-c", "cd '"+l.dir+"' && sha256sum *.iso > SHA256SUMS")
	if err != nil {
		t.Fatalf("sha256sum: %v\n%s", err, out)
	}
	sums := filepath.Join(l.dir, "SHA256SUMS")
	vendor.sign(t, sums, sums+".sign", false)
	vendor.sign(t, sums, sums+".asc", true)
	vendorKeys := filepath.Join(l.dir, "vendor.gpg")
	vendor.export(t, vendorKeys, false)
	vendorKeysAsc := filepath.Join(l.dir, "vendor.asc")
	vendor.export(t, vendorKeysAsc, true)
	strangerKeys := filepath.Join(l.dir, "stranger.asc")
	stranger.export(t, strangerKeys, true)
	strangerSig := filepath.Join(l.dir, "SHA256SUMS.stranger")
	stranger.sign(t, sums, strangerSig, false)
	digest := sha256sum(t, iso)

	t.Run("accepted", func(t *testing.T) {
		out, code := l.importCmd(t, iso, "--sums", sums, "--sums-sig", sums+".sign", "--keyring", vendorKeysAsc)
		if code != 0 || !strings.Contains(out, digest+" stored") || !strings.Contains(out, "good signature") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		l.requireBlob(t, digest, iso)
		// Armored signature, binary keyring.
		out, code = l.importCmd(t, iso, "--sums", sums, "--sums-sig", sums+".asc", "--keyring", vendorKeys)
		if code != 0 || !strings.Contains(out, digest+" already stored") {
			t.Fatalf("exit %d, output:\n%s", code, out)
		}
		l.requireNoTemps(t)
	})

	t.Run("edited sums file", func(t *testing.T) {
		before := l.blobDir(t)
		// An attacker lists their own file under the vendor's name.
		evil := filepath.Join(l.dir, "evil", filepath.Base(other))
		os.MkdirAll(filepath.Dir(evil), 0o755)
		os.WriteFile(evil, []byte("not the vendor's image"), 0o644)
		b, _ := os.ReadFile(sums)
		edited := filepath.Join(l.dir, "edited", "SHA256SUMS")
		os.MkdirAll(filepath.Dir(edited), 0o755)
		os.WriteFile(edited, []byte(strings.Replace(string(b), sha256sum(t, other), sha256sum(t, evil), 1)), 0o644)
		out, code := l.importCmd(t, evil, "--sums", edited, "--sums-sig", sums+".sign", "--keyring", vendorKeys)
		requireRefused(t, out, code, edited, "bad signature")
		l.requireUnchanged(t, before)
	})

	t.Run("other key", func(t *testing.T) {
		before := l.blobDir(t)
		// Signed by the vendor, checked against a stranger's key.
		out, code := l.importCmd(t, other, "--sums", sums, "--sums-sig", sums+".sign", "--keyring", strangerKeys)
		requireRefused(t, out, code, "not in the keyring")
		// Signed by a stranger, checked against the vendor's key.
		out, code = l.importCmd(t, other, "--sums", sums, "--sums-sig", strangerSig, "--keyring", vendorKeys)
		requireRefused(t, out, code, "not in the keyring")
		l.requireUnchanged(t, before)
	})

	t.Run("not listed", func(t *testing.T) {
		before := l.blobDir(t)
		unlisted := l.source(t, "unlisted.iso", 1000)
		out, code := l.importCmd(t, unlisted, "--sums", sums, "--sums-sig", sums+".sign", "--keyring", vendorKeys)
		requireRefused(t, out, code, `no line for "unlisted.iso"`)
		l.requireUnchanged(t, before)
	})

	t.Run("listed, but the file differs", func(t *testing.T) {
		before := l.blobDir(t)
		// Same name as a listed image, other content (a corrupt download).
		corrupt := filepath.Join(l.dir, "corrupt", filepath.Base(other))
		os.MkdirAll(filepath.Dir(corrupt), 0o755)
		os.WriteFile(corrupt, randomBytes(1<<20), 0o644)
		out, code := l.importCmd(t, corrupt, "--sums", sums, "--sums-sig", sums+".sign", "--keyring", vendorKeys)
		requireRefused(t, out, code, corrupt, "mismatch", "expected "+sha256sum(t, other), "got "+sha256sum(t, corrupt), "SHA256SUMS line")
		l.requireUnchanged(t, before)
	})
}

// How imageServer ends a response.
const (
	serveAll  = iota // the whole body
	serveCut         // half, then drop the connection once ready() says so
	serveHang        // half, then nothing until the client goes away
)

// imageServer serves body on 127.0.0.1 at /images/netinst.iso. Unless it
// serves it all, it sends the headers (with the full Content-Length unless
// chunked) and the first half of the body, waits until ready() says the
// import is writing, and then drops the connection, as a server killed
// mid-transfer does (serveCut), or waits for the client to give up
// (serveHang).
func imageServer(t *testing.T, body []byte, mode int, chunked bool, ready func() bool) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/images/netinst.iso" {
			http.NotFound(w, r)
			return
		}
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		if mode == serveAll {
			w.Write(body)
			return
		}
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		deadline := time.Now().Add(20 * time.Second)
		for !ready() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if mode == serveHang {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler) // closes the connection, mid-body
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestImageImportHTTP(t *testing.T) {
	l := newImportLab(t)
	body := randomBytes(6<<20 + 17)
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	base := imageServer(t, body, serveAll, false, nil)

	out, code := l.importCmd(t, base+"/images/netinst.iso", "--sha256", digest)
	if code != 0 || !strings.Contains(out, digest+" stored") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(l.dataDir, "blobs", "sha256", digest))
	if err != nil || string(got) != string(body) {
		t.Fatalf("blob differs from what was served (%v)", err)
	}

	// The URL's last segment is the name in SHA256SUMS.
	sums := filepath.Join(l.dir, "SHA256SUMS")
	os.WriteFile(sums, []byte(digest+" *netinst.iso\n"), 0o644)
	out, code = l.importCmd(t, base+"/images/netinst.iso", "--sums", sums)
	if code != 0 || !strings.Contains(out, digest+" already stored") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}

	before := l.blobDir(t)
	out, code = l.importCmd(t, base+"/images/missing.iso", "--sha256", digest)
	requireRefused(t, out, code, "404")
	l.requireUnchanged(t, before)
	l.requireNoTemps(t)
}

func TestImageImportHTTPKilledMidTransfer(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			l := newImportLab(t)
			kept := l.source(t, "kept.iso", 1000)
			if out, code := l.importCmd(t, kept, "--sha256", sha256sum(t, kept)); code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			before := l.blobDir(t)

			body := randomBytes(16 << 20)
			sum := sha256.Sum256(body)
			digest := hex.EncodeToString(sum[:])
			// The server drops the connection once the import has written
			// part of the body to its temporary file.
			sawPartial := false
			writing := func() bool {
				sawPartial = sawPartial || l.partialTemp()
				return sawPartial
			}
			base := imageServer(t, body, serveCut, chunked, writing)

			out, code := l.importCmd(t, base+"/images/netinst.iso", "--sha256", digest)
			requireRefused(t, out, code, base+"/images/netinst.iso", "reading source", "unexpected EOF", "nothing was stored")
			if !sawPartial {
				t.Error("the import never wrote a partial temporary file before the server died")
			}
			l.requireUnchanged(t, before)
			l.requireNoTemps(t)
		})
	}
}

// Ctrl-C in the middle of a download: the temporary file goes too.
func TestImageImportInterrupted(t *testing.T) {
	l := newImportLab(t)
	kept := l.source(t, "kept.iso", 1000)
	if out, code := l.importCmd(t, kept, "--sha256", sha256sum(t, kept)); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	before := l.blobDir(t)
	body := randomBytes(16 << 20)
	sum := sha256.Sum256(body)
	base := imageServer(t, body, serveHang, false, l.partialTemp)

	cmd := exec.Command(binary, "--config", l.config, "image", "import", base+"/images/netinst.iso", "--sha256", hex.EncodeToString(sum[:]))
	cmd.Env = clEnv()
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !l.partialTemp() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			t.Fatalf("the import never wrote a partial temporary file; output:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		requireRefused(t, out.String(), code, "interrupt signal received", "nothing was stored")
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("still running 20 s after SIGINT; output:\n%s", out.String())
	}
	l.requireUnchanged(t, before)
	l.requireNoTemps(t)
}

// On a terminal (script(1) gives the import one) a progress bar shows the
// file's name and how far it got; without one, there is none (see
// TestImageImportRightDigest).
func TestImageImportProgressBar(t *testing.T) {
	need(t, "script")
	l := newImportLab(t)
	src := l.source(t, "debian-12-netinst.iso", 64<<20)
	digest := sha256sum(t, src)
	cmdline := fmt.Sprintf("%s --config %s image import %s --sha256 %s", binary, l.config, src, digest)
	out, err := run(t, 2*time.Minute, "script", "-qec", cmdline, "/dev/null")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, digest+" stored") {
		t.Fatalf("no digest in the output:\n%q", out)
	}
	if !strings.Contains(out, "debian-12-netinst.iso") || !strings.Contains(out, "64 MiB") || !strings.Contains(out, "% |") || !strings.Contains(out, "\r") {
		t.Errorf("no progress bar on the terminal:\n%q", out)
	}
}

// vendorFile is what vendorServer answers for one path.
type vendorFile struct {
	body   []byte
	header map[string]string // set on the response, e.g. Content-Encoding
}

// vendorServer is a download site on 127.0.0.1 serving files by URL path.
// With user set, every request must carry that user and password (basic
// auth). It keeps the header of the last request it answered.
type vendorServer struct {
	URL            string // http://127.0.0.1:PORT
	user, password string

	mu   sync.Mutex
	last http.Header
}

func newVendorServer(t *testing.T, user, password string, files map[string]vendorFile) *vendorServer {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &vendorServer{URL: "http://" + ln.Addr().String(), user: user, password: password}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.last = r.Header.Clone()
		v.mu.Unlock()
		if v.user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != v.user || p != v.password {
				w.Header().Set("WWW-Authenticate", `Basic realm="vendor"`)
				http.Error(w, "401 Unauthorized", http.StatusUnauthorized)
				return
			}
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, val := range f.header {
			w.Header().Set(k, val)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(f.body)))
		w.Write(f.body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return v
}

// lastRequest is the header of the last request the server answered.
func (v *vendorServer) lastRequest() http.Header {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.last
}

// A password in the import URL is the operator's secret: no message the
// import prints may show it, whether the import works or not.
func TestImageImportURLPasswordHidden(t *testing.T) {
	l := newImportLab(t)
	body := randomBytes(1<<20 + 3)
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	v := newVendorServer(t, "admin", "S3cret", map[string]vendorFile{"/images/netinst.iso": {body: body}})
	withPassword := strings.Replace(v.URL, "http://", "http://admin:S3cret@", 1)
	hostPort := strings.TrimPrefix(v.URL, "http://")
	wrong := strings.Repeat("ab", 32)

	for _, tc := range []struct {
		name string
		args []string
		want []string // besides no password; a refusal unless it says "stored"
	}{
		{"missing", []string{withPassword + "/images/missing.iso", "--sha256", digest}, []string{"404 Not Found", "admin:xxxxx@" + hostPort + "/images/missing.iso"}},
		{"wrong password", []string{"http://admin:Wr0ng@" + hostPort + "/images/netinst.iso", "--sha256", digest}, []string{"401 Unauthorized", "admin:xxxxx@"}},
		{"mismatch", []string{withPassword + "/images/netinst.iso", "--sha256", wrong}, []string{"mismatch", "admin:xxxxx@" + hostPort + "/images/netinst.iso"}},
		{"nobody listening", []string{fmt.Sprintf("http://admin:S3cret@127.0.0.1:%d/x.iso", freePort(t, "tcp")), "--sha256", digest}, []string{"connection refused", "admin:xxxxx@"}},
		{"not http", []string{"ftp://admin:S3cret@" + hostPort + "/x.iso", "--sha256", digest}, []string{"http and https", "admin:xxxxx@"}},
		{"bad port", []string{"http://admin:S3cret@127.0.0.1:port/x.iso", "--sha256", digest}, []string{"invalid port", "admin:xxxxx@"}},
		{"no host", []string{"http://admin:S3cret@/x.iso", "--sha256", digest}, []string{"no host", "admin:xxxxx@"}},
		{"names no file", []string{withPassword + "/images/", "--sha256", digest}, []string{"names no file", "admin:xxxxx@"}},
		{"stored", []string{withPassword + "/images/netinst.iso", "--sha256", digest}, []string{digest + " stored"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := l.importCmd(t, tc.args...)
			if strings.Contains(out, "S3cret") {
				t.Errorf("the password shows:\n%s", out)
			}
			if tc.name == "stored" {
				if code != 0 {
					t.Fatalf("exit %d:\n%s", code, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("output does not say %q:\n%s", w, out)
					}
				}
				return
			}
			requireRefused(t, out, code, tc.want...)
		})
	}
	got, err := os.ReadFile(filepath.Join(l.dataDir, "blobs", "sha256", digest))
	if err != nil || string(got) != string(body) {
		t.Fatalf("blob differs from what was served (%v)", err)
	}
	l.requireNoTemps(t)
}

// A .gz that the server labels Content-Encoding: gzip (as Apache's
// AddEncoding and nginx's gzip_static do) is stored as the bytes the
// server sent, the bytes curl and wget save and the vendor's digest is of,
// not decompressed on the way.
func TestImageImportHTTPGzipEncoded(t *testing.T) {
	need(t, "gzip")
	l := newImportLab(t)
	raw := l.source(t, "initrd", 2<<20+9)
	if out, err := run(t, time.Minute, "gzip", "-k", "-n", raw); err != nil {
		t.Fatalf("gzip: %v\n%s", err, out)
	}
	gz, err := os.ReadFile(raw + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256sum(t, raw+".gz")
	v := newVendorServer(t, "", "", map[string]vendorFile{"/debian/initrd.gz": {body: gz, header: map[string]string{
		"Content-Type":     "application/x-gzip",
		"Content-Encoding": "gzip",
	}}})

	out, code := l.importCmd(t, v.URL+"/debian/initrd.gz", "--sha256", digest)
	if code != 0 || !strings.Contains(out, digest+" stored") {
		t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, digest+" stored")
	}
	l.requireBlob(t, digest, raw+".gz")
	if ae := v.lastRequest().Values("Accept-Encoding"); len(ae) > 0 {
		t.Errorf("the import sent Accept-Encoding %q; it stores what is served, so it must ask for no encoding", ae)
	}
	l.requireNoTemps(t)
}

// A blob damaged on disk (truncated by a full disk, overwritten in place)
// is repaired by importing its source again; an intact one is kept.
func TestImageImportRepairsDamagedBlob(t *testing.T) {
	need(t, "truncate", "dd")
	l := newImportLab(t)
	src := l.source(t, "debian-12-netinst.iso", 3<<20+11)
	digest := sha256sum(t, src)
	if out, code := l.importCmd(t, src, "--sha256", digest); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	blobPath := filepath.Join(l.dataDir, "blobs", "sha256", digest)

	for _, damage := range []struct {
		name string
		cmd  []string
	}{
		{"truncated", []string{"truncate", "-s", "1000", blobPath}},
		// Same size, other bytes: only hashing finds it.
		{"overwritten", []string{"dd", "if=/dev/zero", "of=" + blobPath, "bs=4096", "count=1", "seek=10", "conv=notrunc"}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			if out, err := run(t, time.Minute, damage.cmd[0], damage.cmd[1:]...); err != nil {
				t.Fatalf("%s: %v\n%s", damage.cmd[0], err, out)
			}
			if sha256sum(t, blobPath) == digest {
				t.Fatal("the blob is not damaged")
			}
			out, code := l.importCmd(t, src, "--sha256", digest)
			if code != 0 || !strings.Contains(out, digest+" stored") || !strings.Contains(out, "replaced a damaged copy") {
				t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, "replaced a damaged copy")
			}
			l.requireBlob(t, digest, src)
			if info, err := os.Stat(blobPath); err != nil || info.Mode().Perm() != 0o444 {
				t.Errorf("the repaired blob: %v, %v; want mode 0444", info, err)
			}
			l.requireNoTemps(t)

			// Intact now: kept as it is.
			before := l.blobDir(t)
			out, code = l.importCmd(t, src, "--sha256", digest)
			if code != 0 || !strings.Contains(out, digest+" already stored") {
				t.Fatalf("exit %d, output:\n%s", code, out)
			}
			l.requireUnchanged(t, before)
		})
	}

	// Four imports of the same source at once, over a damaged blob: all
	// succeed, and the blob is whole afterwards.
	t.Run("concurrent", func(t *testing.T) {
		if out, err := run(t, time.Minute, "truncate", "-s", "1000", blobPath); err != nil {
			t.Fatalf("truncate: %v\n%s", err, out)
		}
		var wg sync.WaitGroup
		outs := make([]string, 4)
		codes := make([]int, 4)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], codes[i] = l.importCmd(t, src, "--sha256", digest)
			}()
		}
		wg.Wait()
		for i := range outs {
			if codes[i] != 0 || !strings.Contains(outs[i], digest) {
				t.Errorf("import %d: exit %d, output:\n%s", i, codes[i], outs[i])
			}
		}
		l.requireBlob(t, digest, src)
		l.requireNoTemps(t)
	})
}

// Debian's installer images/SHA256SUMS lists files by their path below
// images/, many of them called alike ("./netboot/debian-installer/amd64/linux",
// "./netboot/gtk/debian-installer/amd64/linux", ...). The line for a URL or a
// file is the one whose path its path ends with, as `sha256sum -c` in
// images/ would check it.
func TestImageImportSumsWithPaths(t *testing.T) {
	l := newImportLab(t)
	images := filepath.Join(l.dir, "debian", "dists", "bookworm", "main", "installer-amd64", "current", "images")
	files := map[string]vendorFile{}
	var rels []string
	for _, rel := range []string{
		"netboot/debian-installer/amd64/linux",
		"netboot/debian-installer/amd64/initrd.gz",
		"netboot/gtk/debian-installer/amd64/linux",
		"netboot/gtk/debian-installer/amd64/initrd.gz",
		"hd-media/vmlinuz",
		"cdrom/vmlinuz",
	} {
		p := filepath.Join(images, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := randomBytes(100<<10 + len(rel))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files["/debian/dists/bookworm/main/installer-amd64/current/images/"+rel] = vendorFile{body: b}
		rels = append(rels, "./"+rel)
	}
	// Written as Debian writes it: by sha256sum in images/, paths with "./".
	out, err := run(t, time.Minute, "sh", "-c", "cd '"+images+"' && sha256sum "+strings.Join(rels, " ")+" > SHA256SUMS")
	if err != nil {
		t.Fatalf("sha256sum: %v\n%s", err, out)
	}
	sums := filepath.Join(images, "SHA256SUMS")
	if out, err := run(t, time.Minute, "sh", "-c", "cd '"+images+"' && sha256sum -c SHA256SUMS"); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	v := newVendorServer(t, "", "", files)
	base := v.URL + "/debian/dists/bookworm/main/installer-amd64/current/images/"

	for _, rel := range []string{"netboot/debian-installer/amd64/linux", "netboot/gtk/debian-installer/amd64/linux", "cdrom/vmlinuz"} {
		local := filepath.Join(images, filepath.FromSlash(rel))
		digest := sha256sum(t, local)
		t.Run(rel, func(t *testing.T) {
			out, code := l.importCmd(t, base+rel, "--sums", sums)
			if code != 0 || !strings.Contains(out, digest+" stored") {
				t.Fatalf("URL: exit %d, output:\n%s\nwant %q", code, out, digest+" stored")
			}
			l.requireBlob(t, digest, local)
			// The same file from a local mirror.
			out, code = l.importCmd(t, local, "--sums", sums)
			if code != 0 || !strings.Contains(out, digest+" already stored") {
				t.Fatalf("file: exit %d, output:\n%s", code, out)
			}
		})
	}

	t.Run("a name listed only below other directories", func(t *testing.T) {
		before := l.blobDir(t)
		// "linux" at another place than any line's path: no line is for it.
		elsewhere := newVendorServer(t, "", "", map[string]vendorFile{"/mirror/amd64/linux": files["/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux"]})
		out, code := l.importCmd(t, elsewhere.URL+"/mirror/amd64/linux", "--sums", sums)
		requireRefused(t, out, code, `no line for "linux"`, "/mirror/amd64/linux")
		l.requireUnchanged(t, before)
	})

	t.Run("equally long lines that disagree", func(t *testing.T) {
		before := l.blobDir(t)
		b, _ := os.ReadFile(sums)
		other := strings.Repeat("ab", 32)
		twice := filepath.Join(l.dir, "twice", "SHA256SUMS")
		os.MkdirAll(filepath.Dir(twice), 0o755)
		os.WriteFile(twice, append(b, other+"  netboot/debian-installer/amd64/linux\n"...), 0o644)
		out, code := l.importCmd(t, base+"netboot/debian-installer/amd64/linux", "--sums", twice)
		requireRefused(t, out, code, "lines 1 and 7", "different digests")
		l.requireUnchanged(t, before)
	})
}

// The forms a digest comes in: sha256:<hex> as `image build --from` takes
// it, capitals, and a SHA256SUMS saved by a Windows editor with a UTF-8 BOM.
func TestImageImportDigestForms(t *testing.T) {
	l := newImportLab(t)
	src := l.source(t, "boot.wim", 1<<20+1)
	digest := sha256sum(t, src)

	out, code := l.importCmd(t, src, "--sha256", "sha256:"+digest)
	if code != 0 || !strings.Contains(out, digest+" stored") {
		t.Fatalf("sha256:<hex>: exit %d, output:\n%s", code, out)
	}
	out, code = l.importCmd(t, src, "--sha256", "sha256:"+strings.ToUpper(digest))
	if code != 0 || !strings.Contains(out, digest+" already stored") {
		t.Fatalf("sha256:<HEX>: exit %d, output:\n%s", code, out)
	}

	sums := filepath.Join(l.dir, "SHA256SUMS")
	os.WriteFile(sums, []byte("\xef\xbb\xbf"+digest+"  boot.wim\r\n"), 0o644)
	out, code = l.importCmd(t, src, "--sums", sums)
	if code != 0 || !strings.Contains(out, digest+" already stored") {
		t.Fatalf("SHA256SUMS with a BOM: exit %d, output:\n%s", code, out)
	}

	before := l.blobDir(t)
	for _, bad := range []string{digest[:63], digest + "0", "sha256:" + digest[:10], "md5:" + digest, strings.Repeat("g", 64)} {
		out, code := l.importCmd(t, src, "--sha256", bad)
		requireRefused(t, out, code, "--sha256", "64 hex digits")
		if strings.Contains(out, "lower-case") {
			t.Errorf("--sha256 %s: capitals are accepted, but the message asks for lower case:\n%s", bad, out)
		}
	}
	l.requireUnchanged(t, before)
}
